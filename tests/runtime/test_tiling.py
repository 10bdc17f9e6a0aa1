"""Tiling: plans partition the image, weights partition unity, tiled == untiled."""
import numpy as np
import pytest
import torch

from n3cli.api import run_model
from n3cli.imaging.estimate import estimate_sigma
from n3cli.models.nets import N3Net
from n3cli.runtime.runner import run_image
from n3cli.store.checkpoint import load_model
from n3cli.store.zoo import default_for
from n3cli.tiling import blend_weights, plan_axis, plan_axis_fixed, plan_grid, run_tiled


@pytest.mark.parametrize("length,tile,overlap,align", [(300, 100, 32, 5), (1000, 256, 64, 1), (95, 200, 16, 5),
                                                        (517, 128, 8, 1)])
def test_plan_cores_partition_and_windows_hold_context(length, tile, overlap, align):
    spans = plan_axis(length, tile, overlap, align, min_size=80)
    assert spans[0].core0 == 0 and spans[-1].core1 == length
    for a, b in zip(spans, spans[1:]):
        assert a.core1 == b.core0
    for s in spans:
        assert s.core0 % align == 0 and s.start % align == 0
        assert s.start <= max(0, s.core0 - overlap) and s.stop >= min(length, s.core1 + overlap)
        assert s.stop - s.start >= min(80, length)
        assert s.core1 - s.core0 <= tile + align


@pytest.mark.parametrize("height,width,tile,overlap,align", [
    (64, 9600, 512, 96, 1), (600, 10000, 512, 96, 4), (2000, 500, 512, 96, 1), (3000, 4000, 512, 96, 4),
    (1024, 1024, 512, 96, 1), (130, 7000, 100, 24, 5), (40, 40, 512, 96, 1)])
def test_grid_windows_stay_within_a_square_tiles_memory(height, width, tile, overlap, align):
    rows, cols = plan_grid(height, width, tile, overlap, align, min_size=64)
    for spans, length in ((rows, height), (cols, width)):
        assert spans[0].core0 == 0 and spans[-1].core1 == length
        assert all(a.core1 == b.core0 for a, b in zip(spans, spans[1:]))
        assert all(s.core0 % align == 0 and s.start % align == 0 for s in spans)
    longest = lambda spans: max(s.stop - s.start for s in spans)  # noqa: E731
    assert longest(rows) * longest(cols) <= (tile + 2 * overlap) ** 2
    run = lambda spans: sum(s.stop - s.start for s in spans)  # noqa: E731
    square = plan_axis(height, tile, overlap, align, 64), plan_axis(width, tile, overlap, align, 64)
    assert run(rows) * run(cols) <= run(square[0]) * run(square[1])  # never more pixels run than square tiles


def test_a_strip_or_a_panorama_runs_in_long_tiles_not_many_small_ones():
    rows, cols = plan_grid(64, 9600, 512, 96, min_size=64)
    assert (len(rows), len(cols)) == (1, 2)  # square tiles: 19, each with 2 x 96 px of context
    rows, cols = plan_grid(9600, 64, 512, 96, min_size=64)
    assert (len(rows), len(cols)) == (2, 1)
    run = lambda rows, cols: sum(r.stop - r.start for r in rows) * sum(c.stop - c.start for c in cols)  # noqa: E731
    square = run(plan_axis(600, 512, 96), plan_axis(10000, 512, 96))  # 2 rows x 20 columns
    rows, cols = plan_grid(600, 10000, 512, 96)
    assert len(rows) == 1 and run(rows, cols) < 0.75 * square


def test_blend_weights_sum_to_one():
    for scale in (1, 3):
        spans = plan_axis(400, 90, 24, 5)
        total = np.zeros(400 * scale)
        for s in spans:
            total[s.start * scale : s.stop * scale] += blend_weights(s, 400, 16, scale)
        assert np.allclose(total, 1.0)


def _small_n3net():
    torch.manual_seed(0)
    net = N3Net(1, 1, features=16, depth=3, k=3, embed_features=16).eval()
    return net


def test_tiled_equals_untiled_on_many_tiles():
    net = _small_n3net()
    x = torch.rand(1, 1, 300, 290)
    whole = run_model(net, x, tile=4096, overlap=8)
    tiles = []
    tiled = run_model(net, x, tile=64, overlap=net.context, on_tile=lambda d, t: tiles.append(t))
    assert tiles[-1] >= 9
    assert tiled.shape == whole.shape == (1, 1, 300, 290)
    assert (tiled - whole).abs().max().item() <= 1e-4


def test_scale_factor_tiling_with_an_upsampler():
    up = lambda t: t.repeat(2, axis=2).repeat(2, axis=3)  # noqa: E731  (nearest-neighbour x2)
    x = np.random.default_rng(0).random((1, 2, 70, 90), dtype=np.float32)
    y = run_tiled(up, x, tile=32, overlap=8, scale=2)
    assert np.allclose(y, up(x))


@pytest.mark.parametrize("length,window,overlap,align", [(300, 100, 16, 5), (1000, 256, 64, 1), (95, 200, 16, 5),
                                                         (515, 160, 40, 5)])
def test_fixed_size_plan_windows_are_exact_and_hold_context(length, window, overlap, align):
    spans = plan_axis_fixed(length, window, overlap, align)
    assert spans[0].core0 == 0 and spans[-1].core1 == length
    for a, b in zip(spans, spans[1:]):
        assert a.core1 == b.core0
    for s in spans:
        assert s.stop - s.start == min(window, length)
        assert 0 <= s.start and s.stop <= length and s.start % align == 0
        assert s.start <= max(0, s.core0 - overlap) and s.stop >= min(length, s.core1 + overlap)


@pytest.mark.slow
def test_fixed_size_tiling_equals_untiled():
    net = _small_n3net()
    x = torch.rand(1, 1, 420, 383)
    whole = run_model(net, x, tile=4096, overlap=8)

    class Fixed:  # a runner that, like a static-shape ONNX graph, takes one size only
        fixed_size, min_size, size_multiple, context = (300, 260), net.min_size, net.size_multiple, net.context
        info = path = None

        def run(self, t):
            assert t.shape[-2:] == self.fixed_size
            with torch.no_grad():
                return net(torch.from_numpy(t)).numpy()

    tiled = run_image(Fixed(), x.numpy(), overlap=net.context)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole.numpy()).max() <= 1e-4


def test_no_visible_seam_on_a_smooth_gradient_with_smallest_overlap():
    model = load_model(default_for("gray").path)
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    grad = (0.15 + 0.7 * (0.6 * xx + 0.4 * yy) / 255.0)[None, None]
    x = torch.from_numpy(grad)
    if model.info.takes_noise_map:  # the sigma/255 map, at the level `n3 denoise` reads: none
        x = torch.cat([x, torch.full_like(x, estimate_sigma(grad[0].transpose(1, 2, 0)) / 255)], 1)
    whole = run_model(model.net, x, tile=4096, overlap=8)[0, 0].numpy()
    tiled = run_model(model.net, x, tile=96, overlap=8)[0, 0].numpy()
    # a seam is a step: no pixel-to-pixel step of the tiled result may exceed the largest step of
    # the untiled one (measured: equal to 1e-4 levels). The cross-fade leaves only a gradual
    # deviation (measured for n3net-gray told no noise: 0.33/255 at overlap 8, 0.09/255 at 32;
    # told sigma 25 on this clean gradient it draws texture, 1/255 RMS, and 4.3/255 at overlap 8).
    step = 0.05 / 255
    assert np.abs(np.diff(tiled, axis=1)).max() <= np.abs(np.diff(whole, axis=1)).max() + step
    assert np.abs(np.diff(tiled, axis=0)).max() <= np.abs(np.diff(whole, axis=0)).max() + step
    assert np.abs(tiled - whole).max() < 2.5 / 255


@pytest.mark.parametrize("size,extra", [((1, 1), (5, 7)), ((3, 2), (40, 33)), ((80, 90), (0, 5)), ((2, 2), (100, 1))])
def test_small_images_are_mirror_padded_alike_by_the_runner_and_by_the_network(size, extra):
    """Both backends pad images below the N³ window the same way: the runner in NumPy before an
    ONNX graph, the network itself in torch; the image stays centred (top/left get the smaller half)."""
    from n3cli.models.nets import _pad_to
    from n3cli.runtime.runner import pad_centered

    x = np.random.default_rng(0).random((1, 2, *size)).astype(np.float32)
    a = pad_centered(x, *extra)
    b = _pad_to(torch.from_numpy(x), *extra).numpy()
    assert a.shape == (1, 2, size[0] + extra[0], size[1] + extra[1])
    assert np.array_equal(a, b)
    top, left = extra[0] // 2, extra[1] // 2
    assert np.array_equal(a[..., top : top + size[0], left : left + size[1]], x)


def test_the_eight_views_turn_back_exactly():
    from n3cli.runtime.runner import TTA_VIEWS, dihedral

    x = np.arange(2 * 5 * 7, dtype=np.float32).reshape(1, 2, 5, 7)
    views = [dihedral(x, v) for v in range(TTA_VIEWS)]
    assert len({v.tobytes() for v in views}) == 8  # eight different views
    for v, y in enumerate(views):
        assert np.array_equal(dihedral(y, v, inverse=True), x)


class _ShiftRight:
    """A deliberately non-equivariant 'model': the image moved one pixel right (edge repeated)."""

    info, fixed_size, min_size, size_multiple, context = None, None, 1, 1, 0

    def run(self, x):
        return np.concatenate([x[..., :1], x[..., :-1]], axis=-1)

    def auto_tile(self, overlap):
        return 4096

    def tiles_per_forward(self, tile, overlap):
        return 1

    def describe(self):
        return "test"


def test_tta_averages_the_eight_views_each_turned_back():
    """A right shift seen through the eight views is a shift right, left, up or down, twice each."""
    x = np.random.default_rng(0).random((1, 1, 9, 11)).astype(np.float32)
    got = run_image(_ShiftRight(), x, tta=True)

    def shift(a, axis, d):
        out = np.roll(a, d, axis)
        edge = [slice(None)] * 4
        edge[axis] = 0 if d > 0 else -1
        out[tuple(edge)] = a[tuple(edge)]
        return out

    want = (shift(x, 3, 1) + shift(x, 3, -1) + shift(x, 2, 1) + shift(x, 2, -1)) / 4
    assert np.allclose(got, want, atol=1e-6)
    assert np.array_equal(run_image(_ShiftRight(), x), _ShiftRight().run(x))  # without --tta: one pass


def test_several_tiles_per_forward_stitch_to_the_one_at_a_time_result():
    """Tiles of one size go to the network together (GPUs); each is stitched where it belongs."""
    x = np.random.default_rng(1).random((1, 2, 230, 190), dtype=np.float32)
    calls = []

    def blur(t):  # per-sample and position-independent, like a network
        calls.append(t.shape)
        p = np.pad(t, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        return sum(p[:, :, i : i + t.shape[2], j : j + t.shape[3]] for i in range(3) for j in range(3)) / 9

    one = run_tiled(blur, x, tile=48, overlap=8)
    tiles = len(calls)
    calls.clear()
    progress = []
    four = run_tiled(blur, x, tile=48, overlap=8, batch=4, on_tile=lambda d, t: progress.append((d, t)))
    assert all(shape[0] <= 4 for shape in calls) and sum(shape[0] for shape in calls) == tiles
    assert len(calls) < tiles / 2  # most calls took several tiles
    assert progress[-1] == (tiles, tiles)
    np.testing.assert_allclose(four, one, atol=1e-6)
    np.testing.assert_allclose(four, blur(x), atol=1e-6)


@pytest.mark.parametrize("form", ["fused", "blocked"])  # the CPUs' N³ form and the GPUs'
def test_a_network_given_several_tiles_per_forward_denoises_as_one_at_a_time(form):
    from n3cli import api
    from n3cli.models.n3 import block_form

    noisy = np.random.default_rng(2).random((150, 170, 1), dtype=np.float32)
    runner = api.load_denoiser(None, "gray", "cpu")
    assert runner.tiles_per_forward(64, runner.context) == 1  # CPUs: no gain from batches
    with block_form(runner.net, form):
        one = api.denoise(runner, noisy, sigma=25, tile=64)
        runner.tile_batch = 4
        four = api.denoise(runner, noisy, sigma=25, tile=64)
    assert np.abs(four - one).max() < 1e-4
    if form == "blocked":
        return
    up = api.load_upscaler(None, 2, "cpu")
    small = noisy[:60, :70]
    one = api.upscale(up, small, 2, tile=24)
    up.tile_batch = 3
    assert np.abs(api.upscale(up, small, 2, tile=24) - one).max() < 1e-4


def test_noise_level_planes_added_per_tile_give_the_full_size_maps_result():
    """The noise-level map is appended to each tile as it runs (run_image's ``constants``), not
    built at full size (61 MB of one value at 16 MP, 290 MB for a 24 MP raw file's two maps)."""
    from n3cli import api

    runner = api.load_denoiser(None, "rgb", "cpu")
    x = np.random.default_rng(3).random((1, 3, 131, 150), dtype=np.float32)  # not a multiple of 8: padded
    level = np.float32(20 / 255)
    full = np.concatenate([x, np.full((1, 1, 131, 150), level)], axis=1)
    for tile, tta in ((48, False), (None, True)):
        want = run_image(runner, full, tile=tile, tta=tta)
        got = run_image(runner, x, tile=tile, tta=tta, constants=(float(level),))
        assert got.shape == (1, 3, 131, 150)
        np.testing.assert_array_equal(got, want)
