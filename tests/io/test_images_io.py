"""Image files: bit depth, channels, alpha and metadata survive a read/write round trip."""
import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms

from n3cli.errors import ImageError
from n3cli.io.images import read_image, write_image


def _array(h, w, c, dtype, seed=0):
    rng = np.random.default_rng(seed)
    m = np.iinfo(dtype).max
    a = rng.integers(0, m + 1, size=(h, w, c), dtype=np.int64).astype(dtype)
    return a[:, :, 0] if c == 1 else a


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("c", [1, 2, 3, 4])
def test_lossless_round_trip_keeps_depth_channels_and_alpha(tmp_path, ext, dtype, c):
    import tifffile

    a = _array(17, 23, c, dtype)
    src = tmp_path / f"a{ext}"
    if ext == ".tif":
        tifffile.imwrite(src, a, photometric="rgb" if c >= 3 else "minisblack",
                         extrasamples=["unassalpha"] if c in (2, 4) else None)
    else:
        write_image(src, _image_from(a))
    img = read_image(src)
    assert img.dtype == dtype and img.channels == (1 if c <= 2 else 3)
    assert (img.alpha is not None) == (c in (2, 4))
    dst = tmp_path / f"b{ext}"
    write_image(dst, img)
    back = read_image(dst)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back.pixels, img.pixels)
    if c in (2, 4):
        np.testing.assert_array_equal(back.alpha, a[:, :, -1])


def _image_from(a):
    from n3cli.io.images import from_array

    return from_array(a, None, None, None)


def test_jpeg_keeps_icc_and_exif_orientation_without_rotating(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    src = tmp_path / "in.jpg"
    PILImage.fromarray(_array(40, 60, 3, np.uint8)).save(src, quality=95, icc_profile=icc, exif=exif.tobytes())
    img = read_image(src)
    assert img.pixels.shape == (40, 60, 3)
    for ext in (".jpg", ".png", ".tif"):
        dst = tmp_path / f"out{ext}"
        write_image(dst, img)
        if ext == ".tif":  # Pillow turns a TIFF's size by its orientation: read the stored layout
            with tifffile.TiffFile(dst) as t:
                assert t.pages[0].shape[:2] == (40, 60) and t.pages[0].tags["Orientation"].value == 6
        with PILImage.open(dst) as im:
            assert ext == ".tif" or im.size == (60, 40)
            assert im.info.get("icc_profile") == icc
            assert im.getexif().get(0x0112) == 6


def test_unreadable_files_raise_one_line_errors(tmp_path):
    txt = tmp_path / "note.png"
    txt.write_text("not an image")
    trunc = tmp_path / "trunc.png"
    PILImage.fromarray(_array(64, 64, 3, np.uint8)).save(trunc)
    trunc.write_bytes(trunc.read_bytes()[:100])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for p in (txt, trunc, empty, tmp_path / "missing.png", tmp_path / "x.gif"):
        with pytest.raises(ImageError) as e:
            read_image(p)
        assert str(p) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ImageError, match="empty file"):  # not a decoder's internal assertion text
        read_image(empty)


def test_a_multi_page_tiff_is_refused_rather_than_cut_to_its_first_page(tmp_path):
    stack = tmp_path / "stack.tif"
    pages = np.stack([_array(20, 30, 3, np.uint8, seed=s) for s in range(3)])
    tifffile.imwrite(stack, pages, photometric="rgb")
    with pytest.raises(ImageError, match="stack of 3 images"):
        read_image(stack)
    thumb = tmp_path / "thumb.tif"  # a reduced-resolution copy beside the image is no stack
    with tifffile.TiffWriter(thumb) as t:
        t.write(pages[0], photometric="rgb", metadata=None)
        t.write(pages[0][::4, ::4], photometric="rgb", subfiletype=1, metadata=None)
    np.testing.assert_array_equal(read_image(thumb).pixels, pages[0] / np.float32(255))


def test_tiff_caption_travels_without_tifffiles_layout_note(tmp_path, recwarn):
    """A TIFF written by tifffile holds a JSON layout note as its ImageDescription; writing it back
    beside tifffile's own made tifffile warn on stderr in every batch. A real caption is kept."""
    for desc, kept in (('{"shape": [20, 30, 3]}', None), ("OLYMPUS DIGITAL CAMERA", "OLYMPUS DIGITAL CAMERA")):
        src = tmp_path / "in.tif"
        tifffile.imwrite(src, _array(20, 30, 3, np.uint8), photometric="rgb", description=desc, metadata=None)
        img = read_image(src)
        dst = tmp_path / "out.tif"
        write_image(dst, img)
        with tifffile.TiffFile(dst) as t:
            tag = t.pages[0].tags.get(270)
            assert (tag.value if tag is not None else None) == kept
        np.testing.assert_array_equal(read_image(dst).pixels, img.pixels)
    assert not [w for w in recwarn if "extratag" in str(w.message)]


def test_float_tiff_and_16bit_to_8bit_formats(tmp_path):
    import tifffile

    f = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", f, photometric="rgb")
    img = read_image(tmp_path / "f.tif")
    assert img.dtype == np.float32
    write_image(tmp_path / "g.tif", img)
    np.testing.assert_array_equal(read_image(tmp_path / "g.tif").pixels, f)
    write_image(tmp_path / "g.jpg", img)
    assert read_image(tmp_path / "g.jpg").dtype == np.uint8


def _png_declaring(width: int, height: int) -> bytes:
    """A valid tiny PNG whose header declares ``width`` x ``height`` RGBA 16-bit (no pixel data)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _jpeg_declaring(tmp_path, width: int, height: int):
    """A 16 x 16 JPEG whose frame header is rewritten to declare ``width`` x ``height``."""
    import io
    import struct

    buf = io.BytesIO()
    PILImage.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path = tmp_path / "big.jpg"
    path.write_bytes(bytes(data))
    return path


def test_declared_size_is_checked_before_decoding(tmp_path):
    """A 30000 x 30000 RGBA16 PNG header made OpenCV ask for 7.2 GB; a 13000 x 13000 JPEG went past
    2.4 GB with Pillow's warning on stderr. Both are refused from their headers alone."""
    import tracemalloc

    png = tmp_path / "big.png"
    png.write_bytes(_png_declaring(30000, 30000))
    jpg = _jpeg_declaring(tmp_path, 13000, 13000)
    tracemalloc.start()
    try:
        for f, mp in ((png, "900 MP"), (jpg, "169 MP")):
            with pytest.raises(ImageError, match=f"{mp}, over the limit of 120 MP"):
                read_image(f)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6
    with pytest.raises(ImageError, match="over the limit of 1 MP"):
        read_image(jpg, max_pixels=1_000_000)
    small = tmp_path / "small.png"
    PILImage.fromarray(np.zeros((20, 30, 3), np.uint8)).save(small)
    assert read_image(small, max_pixels=600).pixels.shape == (20, 30, 3)  # at the limit: read


@pytest.mark.parametrize("ext", [".jpg", ".webp", ".heic"])
def test_quality_steers_the_lossy_encoders_and_a_bad_one_is_refused(tmp_path, ext):
    yy, xx = np.mgrid[0:96, 0:128] / 128.0
    rng = np.random.default_rng(0)
    px = np.clip(np.stack([0.5 + 0.3 * np.sin(9 * xx), 0.4 + 0.2 * yy, 0.3 + 0.4 * xx * yy], -1)
                 + rng.normal(0, 0.05, (96, 128, 3)), 0, 1).astype(np.float32)
    img = _image_from(np.rint(px * 255).astype(np.uint8))
    err = {}
    for q in (40, 95):
        write_image(tmp_path / f"q{q}{ext}", img, quality=q)
        err[q] = float(np.abs(read_image(tmp_path / f"q{q}{ext}").pixels - img.pixels).mean())
    assert (tmp_path / f"q40{ext}").stat().st_size < 0.7 * (tmp_path / f"q95{ext}").stat().st_size
    assert err[40] > err[95]
    write_image(tmp_path / f"default{ext}", img)  # the default is 95
    assert (tmp_path / f"default{ext}").read_bytes() == (tmp_path / f"q95{ext}").read_bytes()
    with pytest.raises(ImageError, match="quality 0"):
        write_image(tmp_path / f"bad{ext}", img, quality=0)
    assert not (tmp_path / f"bad{ext}").exists()
