"""HEIF/HEIC, the format phones write: depth, rotation, metadata and alpha survive n3's reading and writing."""
import numpy as np
import pillow_heif
import pytest
from PIL import Image as PILImage
from PIL import ImageCms

from n3cli.errors import ImageError
from n3cli.eval.metrics import psnr
from n3cli.io.images import read_image, write_image


def _scene(h=48, w=64):
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    return np.stack([0.2 + 0.6 * xx, 0.3 + 0.5 * yy, 0.5 + 0.3 * np.sin(6 * xx * yy)], -1)


def _heif(path, arr, mode, **kw):
    heif = pillow_heif.from_bytes(mode=mode, size=(arr.shape[1], arr.shape[0]), data=np.ascontiguousarray(arr).tobytes())
    heif.save(path, quality=95, **kw)


def test_a_phone_photo_reads_upright_with_its_metadata_and_keeps_them_when_written(tmp_path):
    """Phones store rotation as a HEIF transform: the pixels come upright and the EXIF orientation
    is not carried (a JPEG written from it would otherwise turn the photo a second time)."""
    scene = _scene()
    pixels = np.rint(scene * 255).astype(np.uint8)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    exif[0x0110] = "iPhone 15"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    _heif(tmp_path / "in.heic", pixels, "RGB", exif=exif.tobytes(), icc_profile=icc)
    img = read_image(tmp_path / "in.heic")
    assert img.dtype == np.uint8 and img.pixels.shape == (64, 48, 3)
    upright = np.rot90(scene, k=-1)
    assert psnr(img.pixels, upright) > 38 and psnr(img.pixels, np.rot90(scene, k=1)) < 25
    assert img.icc == icc
    for ext in (".heic", ".jpg"):
        write_image(tmp_path / f"out{ext}", img)
        back = read_image(tmp_path / f"out{ext}")
        assert back.pixels.shape == (64, 48, 3) and psnr(back.pixels, img.pixels) > 38
        assert back.icc == icc
        tags = PILImage.Exif()
        if ext == ".heic":
            tags.load(pillow_heif.open_heif(tmp_path / "out.heic").info["exif"])
        else:
            with PILImage.open(tmp_path / "out.jpg") as im:
                tags = im.getexif()
        assert tags.get(0x0110) == "iPhone 15" and tags.get(0x0112) in (None, 1)


def test_ten_bit_heif_is_sixteen_bit_over_the_full_range_and_written_back_with_ten_bits(tmp_path):
    scene = _scene()
    scene[0, :8] = 1.0  # white must read as 1.0, not 1023 << 6 = 65472 / 65535
    a16 = np.rint(scene * 65535).astype(np.uint16)
    _heif(tmp_path / "hdr.heic", a16, "RGB;16", chroma=444)
    img = read_image(tmp_path / "hdr.heic")
    assert img.dtype == np.uint16
    assert img.pixels[0, :8].max() == 1.0
    assert psnr(img.pixels, scene) > 45
    write_image(tmp_path / "out.heic", img)
    assert pillow_heif.open_heif(tmp_path / "out.heic", convert_hdr_to_8bit=False).info["bit_depth"] == 10
    back = read_image(tmp_path / "out.heic")
    assert back.dtype == np.uint16 and psnr(back.pixels, img.pixels) > 45
    write_image(tmp_path / "out.png", img)  # 16-bit PNG from a 10-bit photo
    assert read_image(tmp_path / "out.png").dtype == np.uint16


@pytest.mark.parametrize("c,dtype", [(1, np.uint8), (1, np.uint16), (2, np.uint8), (4, np.uint8)])
def test_gray_and_alpha_layouts_are_written_and_read_back(tmp_path, c, dtype):
    from n3cli.io.images import from_array

    m = np.iinfo(dtype).max
    gray = _scene()[:, :, :1]
    arr = np.rint(np.concatenate([gray] * (3 if c == 4 else 1) + ([gray[::-1]] if c in (2, 4) else []), 2) * m).astype(dtype)
    img = from_array(arr, None, None, None)
    write_image(tmp_path / "g.heic", img)
    back = read_image(tmp_path / "g.heic")
    assert back.dtype == dtype
    assert psnr(back.pixels.mean(axis=2), img.pixels.mean(axis=2)) > 38  # gray may come back as RGB
    assert (back.alpha is None) == (c in (1, 3))
    if back.alpha is not None:
        assert np.abs(back.alpha.astype(int) - arr[:, :, -1]).max() <= 2


def test_a_damaged_heif_is_a_one_line_error(tmp_path):
    _heif(tmp_path / "ok.heic", np.rint(_scene() * 255).astype(np.uint8), "RGB")
    data = (tmp_path / "ok.heic").read_bytes()
    (tmp_path / "cut.heic").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.heic").write_text("not an image")
    for name in ("cut.heic", "text.heic"):
        with pytest.raises(ImageError) as e:
            read_image(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and "\n" not in str(e.value)
