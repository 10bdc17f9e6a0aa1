"""Multi-page TIFF stacks: `n3 denoise` / `n3 upscale` take them frame by frame and write a stack
shaped like the input (axes, sample type, pixel size, ImageJ metadata); a broken stack writes nothing."""

import json

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from n3cli import api
from n3cli.cli.main import cli
from n3cli.errors import ImageError
from n3cli.eval.metrics import psnr
from n3cli.io.images import read_image
from n3cli.io.stacks import open_stack, read_frames


def scenes(frames, h=64, w=80, c=1):
    """Smooth moving blobs: frame t of a time series, H x W x C in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for t in range(frames):
        img = 0.2 + 0.5 * np.exp(-((xx - 25 - 4 * t) ** 2 + (yy - 30) ** 2) / 150) + 0.2 * np.sin(xx / 7) ** 2
        out.append(np.stack([img * (0.7 + 0.15 * k) for k in range(c)], -1))
    return np.stack(out).astype(np.float32)


def noisy(clean, dtype, sigma=15, seed=0):
    m = np.iinfo(dtype).max
    n = clean + np.random.default_rng(seed).normal(0, sigma / 255, clean.shape)
    return np.rint(np.clip(n, 0, 1) * m).astype(dtype)


def imagej_stack(path, dtype=np.uint16):
    """A 2-timepoint x 2-channel ImageJ hyperstack (TCYX) with pixel size, z spacing and frame interval."""
    clean = scenes(4)[..., 0]
    tifffile.imwrite(path, noisy(clean, dtype).reshape(2, 2, *clean.shape[1:]), imagej=True,
                     metadata={"axes": "TCYX", "spacing": 0.5, "unit": "um", "finterval": 2.0, "mode": "composite",
                               "Ranges": (0.0, 50000.0, 0.0, 40000.0)},
                     resolution=(4.0, 4.0))
    return clean


def test_imagej_hyperstack_is_denoised_frame_by_frame_and_keeps_its_metadata(tmp_path):
    src, dst = tmp_path / "cells.tif", tmp_path / "clean.tif"
    clean = imagej_stack(src)
    res = CliRunner().invoke(cli, ["denoise", "-q", str(src), "-o", str(dst), "--json"])
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout.splitlines()[0])
    assert rec["frames"] == 4 and len(rec["frame_sigmas"]) == 4
    assert all(12 < s < 18 for s in rec["frame_sigmas"])  # 15 added
    with tifffile.TiffFile(src) as a, tifffile.TiffFile(dst) as b:
        assert b.is_imagej and b.series[0].axes == "TCYX" and b.series[0].shape == (2, 2, 64, 80)
        assert b.series[0].dtype == np.uint16
        for key in ("spacing", "unit", "finterval", "channels", "frames", "mode", "Ranges"):
            assert b.imagej_metadata[key] == a.imagej_metadata[key]
        assert b.pages[0].resolution == (4.0, 4.0)
        out = b.series[0].asarray().reshape(4, 64, 80) / 65535
        inp = a.series[0].asarray().reshape(4, 64, 80) / 65535
    for t in range(4):
        assert psnr(out[t], clean[t]) > psnr(inp[t], clean[t]) + 6
    # each frame exactly as that frame alone, in a file of its own, comes out
    tifffile.imwrite(tmp_path / "frame3.tif", np.rint(inp[3] * 65535).astype(np.uint16))
    api.denoise_file(tmp_path / "frame3.tif", tmp_path / "frame3_out.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "frame3_out.tif"),
                                  np.rint(out[3] * 65535).astype(np.uint16))


def test_rgb_stack_keeps_compression_and_upscale_scales_the_pixel_size(tmp_path):
    src = tmp_path / "scan.tif"
    clean = scenes(3, c=3)
    tifffile.imwrite(src, noisy(clean, np.uint8, 10), photometric="rgb", compression="zlib",
                     resolution=(300, 300), resolutionunit=2)
    res = CliRunner().invoke(cli, ["denoise", "-q", str(src), "-o", str(tmp_path / "d.tif"), "--noise", "gaussian"])
    assert res.exit_code == 0, res.output
    with tifffile.TiffFile(tmp_path / "d.tif") as t:
        assert t.series[0].shape == (3, 64, 80, 3) and t.pages[0].compression == 8
        assert t.pages[0].resolution == (300.0, 300.0)
        out = t.series[0].asarray() / 255
    assert all(psnr(out[i], clean[i]) > 32 for i in range(3))

    res = CliRunner().invoke(cli, ["upscale", "-q", str(src), "-o", str(tmp_path / "u.tif"), "-s", "2", "--compare"])
    assert res.exit_code == 0, res.output
    with tifffile.TiffFile(tmp_path / "u.tif") as t:
        assert t.series[0].shape == (3, 128, 160, 3) and t.series[0].dtype == np.uint8
        assert t.pages[0].resolution == (600.0, 600.0) and t.pages[0].resolutionunit == 2
    assert read_image(tmp_path / "u.compare.png").pixels.shape[0] == 128


def test_stack_to_a_format_without_frames_fails_alone_and_writes_nothing(tmp_path):
    src = tmp_path / "cells.tif"
    imagej_stack(src)
    single = tmp_path / "one.png"
    tifffile.imwrite(tmp_path / "one.tif", noisy(scenes(1)[0, ..., 0], np.uint8))
    res = CliRunner().invoke(cli, ["denoise", "-q", str(src), str(tmp_path / "one.tif"), "-o",
                                   str(tmp_path / "out"), "--ext", "png"])
    assert res.exit_code == 1
    assert "cells.tif: a stack of 4 images is written as a TIFF stack" in res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.png"]
    assert not single.exists()


def test_truncated_stack_names_the_frame_and_leaves_no_output(tmp_path):
    full, cut = tmp_path / "full.tif", tmp_path / "cut.tif"
    tifffile.imwrite(full, noisy(scenes(5)[..., 0], np.uint8))  # contiguous: all IFDs after the data
    with tifffile.TiffFile(full) as t:
        start = t.series[0].dataoffset
    cut.write_bytes(full.read_bytes()[: start + 64 * 80 * 3])  # frames 4 and 5 gone, and every IFD but the first
    res = CliRunner().invoke(cli, ["denoise", "-q", str(cut), "-o", str(tmp_path / "out.tif")])
    assert res.exit_code == 1
    assert "cut.tif: cannot read frame 4 of 5" in res.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))] == []
    with pytest.raises(ImageError, match="stack of 5 images"):  # never read as its first frame alone
        read_image(cut)


def test_contiguous_frames_behind_one_ifd_are_all_read(tmp_path):
    full, one = tmp_path / "full.tif", tmp_path / "one_ifd.tif"
    arr = noisy(scenes(5)[..., 0], np.uint8)
    tifffile.imwrite(full, arr)
    with tifffile.TiffFile(full) as t:
        end = t.series[0].dataoffset + arr.nbytes
    one.write_bytes(full.read_bytes()[:end])  # the IFDs of frames 2-5 (after the data) cut off
    with tifffile.TiffFile(one) as t:
        assert len(t.series[0].pages) == 1
    stack = open_stack(one)
    assert stack.frames == 5
    got = [np.rint(f.pixels[:, :, 0] * 255).astype(np.uint8) for f in read_frames(stack)]
    np.testing.assert_array_equal(np.stack(got), arr)


def test_print_noise_reads_each_frame(tmp_path):
    src = tmp_path / "cells.tif"
    imagej_stack(src)
    res = CliRunner().invoke(cli, ["denoise", "--print-noise", str(src)])
    assert res.exit_code == 0, res.output
    assert "4 frames, sigma" in res.stdout
    n = api.noise_level(src)
    assert n["frames"] == 4 and abs(n["sigma"] - 15) < 3


def test_one_gray_image_with_a_channel_axis_is_one_image_and_frames_may_keep_one(tmp_path):
    img = noisy(scenes(1)[0], np.uint16)  # H x W x 1
    tifffile.imwrite(tmp_path / "one.tif", img, photometric="minisblack")
    assert open_stack(tmp_path / "one.tif") is None
    assert read_image(tmp_path / "one.tif").pixels.shape == (64, 80, 1)
    frames = noisy(scenes(3), np.uint16)  # T x H x W x 1
    tifffile.imwrite(tmp_path / "three.tif", frames, photometric="minisblack")
    stack = open_stack(tmp_path / "three.tif")
    assert stack.frames == 3 and (stack.height, stack.width, stack.samples) == (64, 80, 1)
    got = np.stack([f.pixels for f in read_frames(stack)])
    np.testing.assert_array_equal(np.rint(got * 65535).astype(np.uint16), frames)


def test_ome_tiff_keeps_its_physical_sizes_time_step_and_channel_names(tmp_path):
    import xml.etree.ElementTree as ET

    src = tmp_path / "cells.ome.tif"
    clean = scenes(6)[..., 0]
    tifffile.imwrite(src, noisy(clean, np.uint16).reshape(3, 2, 64, 80), ome=True,
                     metadata={"axes": "TCYX", "PhysicalSizeX": 0.2, "PhysicalSizeXUnit": "µm", "PhysicalSizeY": 0.25,
                               "PhysicalSizeYUnit": "µm", "TimeIncrement": 5.0, "TimeIncrementUnit": "s",
                               "Channel": {"Name": ["DAPI", "GFP"]}})
    for args, out, size in ((["denoise"], "d.ome.tif", (0.2, 0.25)), (["upscale", "-s", "2"], "u.ome.tif", (0.1, 0.125))):
        res = CliRunner().invoke(cli, [*args, "-q", str(src), "-o", str(tmp_path / out)])
        assert res.exit_code == 0, res.output
        with tifffile.TiffFile(tmp_path / out) as t:
            assert t.is_ome and t.series[0].axes == "TCYX"
            px = next(e for e in ET.fromstring(t.ome_metadata).iter() if e.tag.endswith("}Pixels"))
            assert (float(px.get("PhysicalSizeX")), float(px.get("PhysicalSizeY"))) == size
            assert px.get("PhysicalSizeXUnit") == "µm" and float(px.get("TimeIncrement")) == 5.0
            assert [c.get("Name") for c in px if c.tag.endswith("}Channel")] == ["DAPI", "GFP"]
