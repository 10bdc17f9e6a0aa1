"""Burst denoising (`n3 denoise --burst`): one frame denoised against N hand-held frames merged
and denoised, on synthetic bursts of CBSD68 images.

    python benchmarks/burst.py [--shared ../shared] [--count 8] [--frames 2 4 8]
    python benchmarks/burst.py --speed 12 [--frames 8]   # registering and merging 12 MP frames: time, memory
    python benchmarks/burst.py --maps [--frames 4] [--noise gaussian25]   # which noise level the merge is given
    python benchmarks/burst.py --raw [--frames 4]        # raw bursts: merged on the mosaic, n3net-raw
    python benchmarks/burst.py --speed 24 --raw --frames 4   # the same timing for 24 MP raw mosaics
    python benchmarks/burst.py --plateau --count 4       # plain means of 1-32 tripod frames of camera noise

Each burst: the clean image moved by a random hand shake per frame (shift up to 6 px, turn up
to 0.5 degrees, bicubic; the first frame unmoved) with a grey square that walks 25 px a frame
(a moving subject: merged, it would leave ghosts), and independent noise per frame: white
Gaussian sigma 25 and 50, or camera noise (`n3cli.imaging.camera_noise`: the same camera
parameters for every frame of a burst, drawn per image, seed = image index). Camera-noise bursts
are not shaken ("tripod"): the clean target is frame 1's own development, whose demosaicing
depends on where the scene falls on the colour filter, so a shaken burst's merge, closer to the
scene, would be scored against another frame's demosaicing artefacts. PSNR against the
first frame's clean image, 16 px borders left out (the shake moves the scene past them); "moving"
is PSNR on the square's first position and its surroundings (where a ghost would be). Models as
`n3 denoise` picks them (the colour model for white noise, the real-noise model for camera
noise), each given its estimator's reading of the first frame. Times on this machine's threads.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

MOVING = (slice(90, 170), slice(30, 110))


def shaken(img: np.ndarray, n: int, rng: np.random.Generator, shake: bool = True,
           subject: bool = True) -> list[np.ndarray]:
    import cv2

    h, w = img.shape[:2]
    out = []
    for i in range(n):
        M = np.float64([[1, 0, 0], [0, 1, 0]])
        if i and shake:
            M = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-0.5, 0.5), 1.0)
            M[:, 2] += rng.uniform(-6, 6, 2)
        c = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        if subject:
            c[100:160, 40 + 25 * i : 100 + 25 * i] = 0.8
        out.append(np.clip(c, 0, 1).astype(np.float32))
    return out


def noisy_burst(clean: list[np.ndarray], noise: str, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The frames with noise, and the first frame's clean target."""
    if noise.startswith("gaussian"):
        sigma = float(noise[len("gaussian"):]) / 255.0
        rng = np.random.default_rng(seed)
        return [(c + rng.normal(0, sigma, c.shape)).astype(np.float32) for c in clean], clean[0]
    from n3cli.imaging.camera_noise import sample, synthesize

    g = torch.Generator().manual_seed(seed)
    p = sample(1, g, torch.device("cpu"))
    frames, target = [], None
    for c in clean:
        x = torch.from_numpy(c.transpose(2, 0, 1).copy())[None]
        noisy, cl = synthesize(x, p, g)
        frames.append(noisy[0].numpy().transpose(1, 2, 0).copy())
        target = cl[0].numpy().transpose(1, 2, 0).copy() if target is None else target
    return frames, target


def psnr(a: np.ndarray, b: np.ndarray, border: int = 16) -> float:
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--first", type=int, default=12, help="the first 12 validate the real-noise model's training")
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--frames", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--noise", nargs="+", default=["gaussian25", "gaussian50", "camera"])
    ap.add_argument("--speed", type=float, default=None, metavar="MP",
                    help="only time registering and merging --frames frames of this many megapixels")
    ap.add_argument("--maps", action="store_true",
                    help="compare the noise levels the merge can be given (no moving square)")
    ap.add_argument("--raw", action="store_true", help="raw bursts at three camera noise levels")
    ap.add_argument("--plateau", action="store_true",
                    help="PSNR of plain means of 1, 4, 16 and 32 still frames of camera noise (no model)")
    a = ap.parse_args()
    if a.plateau:
        return plateau(a)
    if a.speed:
        return speed(a.shared, a.speed, max(a.frames), a.raw)
    if a.raw:
        return raw_bursts(a)
    if a.maps:
        return maps(a)
    from n3cli import api
    from n3cli.api.evaluate import read_images
    from n3cli.pipelines.burst import denoise_burst
    from n3cli.pipelines.denoise import estimate_level

    images = [np.ascontiguousarray(im[:320, :320]) for _, im in read_images(Path(a.shared) / "datasets" / "CBSD68", "rgb")[a.first : a.first + a.count]]
    cache = api.ModelCache(None)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; CBSD68[{a.first}:{a.first + len(images)}] "
          "320x320 crops")
    print(f"{'noise':<12}{'frames':>7}{'model':>18}{'noisy':>8}{'1 frame':>9}{'merge':>8}{'burst':>8}{'gain':>7}"
          f"{'moving 1':>10}{'moving N':>10}{'align s/MP/frame':>18}")
    for noise in a.noise:
        for n in a.frames:
            rows, align_t, mp = [], 0.0, 0.0
            for k, img in enumerate(images):
                clean = shaken(img, n, np.random.default_rng(k), shake=noise != "camera")
                frames, target = noisy_burst(clean, noise, k)
                runner, kind = cache.for_image(frames[0])
                kind_name = kind.kind if kind is not None else None
                single = api.denoise(runner, frames[0], estimate_level(runner.info, frames[0], kind_name))
                t = time.perf_counter()
                merged, _, _ = api.merge_burst(frames)
                align_t += time.perf_counter() - t
                mp += frames[0].shape[0] * frames[0].shape[1] * (n - 1) / 1e6
                out, used = denoise_burst(runner, frames, kind=kind_name)
                rows.append([psnr(frames[0], target), psnr(single, target), psnr(merged, target), psnr(out, target),
                             psnr(single[MOVING], target[MOVING], 0), psnr(out[MOVING], target[MOVING], 0)])
            m = np.mean(rows, axis=0)
            print(f"{noise:<12}{n:>7}{runner.info.name:>18}{m[0]:>8.2f}{m[1]:>9.2f}{m[2]:>8.2f}{m[3]:>8.2f}"
                  f"{m[3] - m[1]:>+7.2f}{m[4]:>10.2f}{m[5]:>10.2f}{align_t / mp:>18.2f}", flush=True)


def maps(a) -> None:
    """The merge denoised with: the map denoise_burst gives (one frame's level times the factor
    by which averaging and resampling lowered the noise), that map x0.7 and x1.4, the estimator's
    reading of the merge, and one frame's level / sqrt(N)."""
    from n3cli import api
    from n3cli.api.evaluate import read_images
    from n3cli.pipelines.denoise import estimate_level

    images = [np.ascontiguousarray(im[:320, :320])
              for _, im in read_images(Path(a.shared) / "datasets" / "CBSD68", "rgb")[a.first : a.first + a.count]]
    cache = api.ModelCache(None)
    names = ["map", "map x0.7", "map x1.4", "estimated", "sigma/sqrt(N)"]
    print(f"CBSD68[{a.first}:{a.first + len(images)}] 320x320 crops, still subject; PSNR of the merge denoised with:")
    for noise in a.noise:
        for n in a.frames:
            rows = []
            for k, img in enumerate(images):
                clean = shaken(img, n, np.random.default_rng(k), shake=noise != "camera", subject=False)
                frames, target = noisy_burst(clean, noise, k)
                runner, kind = cache.for_image(frames[0])
                kn = kind.kind if kind is not None else None
                merged, factor, _ = api.merge_burst(frames)
                one = estimate_level(runner.info, frames[0], kn)
                levels = [one * factor, 0.7 * one * factor, 1.4 * one * factor,
                          estimate_level(runner.info, merged, kn), one / np.sqrt(n)]
                rows.append([psnr(api.denoise(runner, merged, lv), target) for lv in levels])
            m = np.mean(rows, axis=0)
            print(f"  {noise:<12} N={n}: " + ", ".join(f"{name} {v:.2f}" for name, v in zip(names, m)), flush=True)


def plateau(a) -> None:
    """Developed camera noise is not zero-mean (the tone curve bends it, 8-bit rounding and JPEG
    add their own), so a plain mean of still frames levels off short of the clean image."""
    from n3cli.api.evaluate import read_images

    images = [np.ascontiguousarray(im[:320, :320])
              for _, im in read_images(Path(a.shared) / "datasets" / "CBSD68", "rgb")[a.first : a.first + a.count]]
    print(f"CBSD68[{a.first}:{a.first + len(images)}] 320x320 crops, camera noise, still frames: PSNR of the plain mean of")
    for k, img in enumerate(images):
        frames, target = noisy_burst(shaken(img, 32, np.random.default_rng(k), shake=False, subject=False), "camera", k)
        print("  " + ", ".join(f"{n} frames {psnr(np.mean(frames[:n], axis=0), target):.2f}" for n in (1, 4, 16, 32)))


RAW_LEVELS = ((4e-3, 2e-5), (1.6e-2, 8e-5), (4e-2, 2e-4))
"""(a, b) of the raw bursts: var = a*x + b on the [0, 1] mosaic, base to high ISO."""


def raw_bursts(a) -> None:
    """Raw bursts: each CBSD68 crop taken back to linear camera RGB (`unprocess`), shaken, put
    through an RGGB colour filter and given Poisson-Gaussian noise per frame; the first frame
    denoised alone by n3net-raw against the burst merged on its mosaic and denoised with its map.
    PSNR on the clean mosaic, 16 px borders left out. No moving square: the sRGB table tests that."""
    from n3cli import api
    from n3cli.api.evaluate import read_images
    from n3cli.imaging.raw_noise import add_poisson_gaussian, mosaic_rggb, unprocess
    from n3cli.io.raw import RawImage
    from n3cli.pipelines.burst import merge_raw_burst
    from n3cli.pipelines.raw import NoiseParams, denoise_mosaic

    images = [np.ascontiguousarray(im[:320, :320])
              for _, im in read_images(Path(a.shared) / "datasets" / "CBSD68", "rgb")[a.first : a.first + a.count]]
    model = api.load_raw_denoiser()
    print(f"CBSD68[{a.first}:{a.first + len(images)}] 320x320 crops as RGGB mosaics; PSNR on the clean mosaic")
    for n in a.frames:
        for level in RAW_LEVELS:
            rows = []
            for k, img in enumerate(images):
                rng = np.random.default_rng(k)
                lin = unprocess(img, rng)[0].astype(np.float32)
                cells = [mosaic_rggb(c) for c in shaken(lin, n, rng, subject=False)]
                raws = [RawImage(add_poisson_gaussian(c, *level, rng), "RGGB", np.zeros((2, 2)), 1.0) for c in cells]
                merged, factor, _ = merge_raw_burst(raws)
                params = NoiseParams(*level, "given")
                one = denoise_mosaic(model, raws[0], params)
                out = denoise_mosaic(model, merged, params, factor=factor)
                rows.append([psnr(np.clip(x, 0, 1), cells[0]) for x in (raws[0].mosaic, merged.mosaic, one, out)])
            m = np.mean(rows, axis=0)
            print(f"  N={n} a={level[0]:g} b={level[1]:g}: noisy {m[0]:.2f}, merge {m[1]:.2f}, 1 frame {m[2]:.2f}, "
                  f"burst {m[3]:.2f} ({m[3] - m[2]:+.2f})", flush=True)


def speed(shared: str, megapixels: float, n: int, raw: bool = False) -> None:
    """Seconds per frame to register and merge a burst of ``n`` colour frames of ``megapixels``
    (a CBSD68 image enlarged to 4:3, shaken, sigma 25; ``raw``: RGGB mosaics of that many
    photosites, merged by merge_raw_burst), and the peak memory of the process."""
    import resource

    import cv2

    from n3cli import api
    from n3cli.api.evaluate import read_images
    from n3cli.imaging.raw_noise import mosaic_rggb
    from n3cli.io.raw import RawImage

    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    _, img = read_images(Path(shared) / "datasets" / "CBSD68", "rgb")[12]
    big = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)

    def frames():  # made one at a time, as files are read
        for i in range(n):
            c = big
            if i:
                M = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-0.5, 0.5), 1.0)
                M[:, 2] += rng.uniform(-6, 6, 2)
                c = cv2.warpAffine(big, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            noisy = (c + rng.normal(0, 25 / 255, c.shape)).astype(np.float32)
            yield RawImage(mosaic_rggb(noisy), "RGGB", np.zeros((2, 2)), 1.0) if raw else noisy

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    _, _, records = (api.merge_raw_burst if raw else api.merge_burst)(frames())
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{w}x{h} {'RGGB mosaic' if raw else 'colour'}, {n} frames ({sum(r['used'] for r in records) + 1} merged): "
          f"{seconds:.1f} s, {seconds / (n - 1):.2f} s per added frame "
          f"(making the frames included), peak RSS {peak:.0f} MB (before: {before:.0f} MB)")


if __name__ == "__main__":
    main()
