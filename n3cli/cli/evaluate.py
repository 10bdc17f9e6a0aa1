"""`n3 eval --data DIR --sigma S ...` (denoising) and `n3 eval --task sr --scale S ...`."""
from __future__ import annotations

import json
import sys

import click

from .common import backend_option, device_option, fail, reports_errors


@click.command("eval")
@click.option("-m", "--model", default=None, metavar="NAME|FILE",
              help="Model to evaluate [default: the one `n3 denoise` picks for these images].")
@click.option("--data", type=click.Path(exists=True),
              help="Folder of clean images (e.g. Set12, BSD68, CBSD68); --task match: a pairs file, or a "
                   "folder with its pairs.txt [default for match: the synthetic test set].")
@click.option("--task", type=click.Choice(["denoise", "sr", "raw", "match"]), default="denoise", show_default=True,
              help="What to measure: denoising (needs --sigma), super-resolution (needs --scale), raw "
                   "denoising (synthetic raw from --data), or match (pose mAP of robust estimation, CNNet and N³Net).")
@click.option("--level", "levels", multiple=True, metavar="A,B",
              help="--task raw: noise level(s) var = a*x + b; repeat for several [default: the four standard levels].")
@click.option("--baseline", default="dncnn-raw", show_default=True, metavar="NAME|FILE",
              help="--task raw: the model to compare against (the DnCNN ablation); 'none' for no baseline.")
@click.option("--pairs", type=click.IntRange(min=1), default=200, show_default=True,
              help="--task match: number of synthetic test pairs (fixed seed).")
@click.option("--outliers", type=(click.FloatRange(0, 0.99), click.FloatRange(0, 0.99)), default=(0.5, 0.95),
              show_default=True, metavar="LO HI", help="--task match: range of wrong-match fractions of the synthetic pairs.")
@click.option("--ratio", type=click.FloatRange(0, 1, min_open=True), default=0.8, show_default=True,
              help="--task match with --data: SIFT ratio test; 1 keeps every nearest neighbour (CNNet's protocol).")
@click.option("-s", "--sigma", "sigmas", multiple=True, type=click.FloatRange(min=0, max=255),
              help="Noise level(s), 0-255 units; repeat for several.")
@click.option("--scale", "scales", multiple=True, type=click.Choice(["2", "3", "4"]),
              help="--task sr: upscaling factor(s); repeat for several.")
@click.option("--seed", default=0, show_default=True, help="Noise seed (the same noise for every model).")
@click.option("--estimate-noise", is_flag=True, help="Give noise-aware models the estimated sigma, not the true one.")
@click.option("--save", "save_dir", type=click.Path(file_okay=False), default=None,
              help="Also write the denoised images (16-bit PNG) here.")
@click.option("-t", "--tile", type=click.IntRange(min=64), default=None, help="Tile size [default: from free memory].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@device_option
@backend_option
@reports_errors
def evaluate(model, data, task, levels, baseline, pairs, outliers, ratio, sigmas, scales, seed, estimate_noise, save_dir, tile,
             as_json, device, backend):
    """Measure a model with the paper's protocol.

    
    Denoising: Gaussian noise added to clean [0,1] images, not clipped or quantised, fixed seed;
    float PSNR and SSIM per image and mean.
    Super-resolution (--task sr): LR by MATLAB-compatible bicubic downscaling rounded to 8 bits;
    PSNR/SSIM on the BT.601 Y channel with `scale` pixels shaved; bicubic alongside.
    RAW (--task raw): --data's sRGB images unprocessed to linear RGGB mosaics (fixed seed),
    Poisson-Gaussian noise at four (a, b) levels, raw-space PSNR of noisy input, the DnCNN
    ablation and the RAW N³Net.
    Matching (--task match): mAP of the pose error at 5/10/20 degrees for robust estimation on all
    matches, the shipped CNNet and N³Net (--model replaces N³Net), on synthetic pairs or --data FILE.
    Without --model: the model `n3 denoise` / `n3 upscale` would pick.
    """
    if task == "match":
        return _evaluate_match(model, data, pairs, outliers, None if ratio >= 1 else ratio, as_json)
    if data is None:
        fail("missing option --data (a folder of clean images)")
    if task == "raw":
        return _evaluate_raw(model, data, levels, baseline, seed, tile, as_json, device, backend)
    if task == "sr":
        if not scales:
            fail("--task sr needs --scale (2, 3 or 4; repeat for several)")
        return _evaluate_sr(model, data, [int(s) for s in scales], tile, as_json, device, backend)
    if not sigmas:
        fail("missing option --sigma (noise level in 0-255 units; repeat for several)")
    from .. import api
    from ..eval.protocols import evaluate_denoiser
    from ..io.images import read_image
    from ..train.data import list_images

    if model is None:
        first = read_image(list_images(data)[0])
        loaded = api.load_denoiser(None, "rgb" if first.channels == 3 else "gray", device, backend)
    else:
        loaded = api.load_denoiser(model, device=device, backend=backend)
    if not as_json:
        click.echo(f"running on {loaded.describe()}", err=True)
    with _progress(len(list_images(data)) * len(sigmas)) as bar:
        report = evaluate_denoiser(loaded, data, list(sigmas), seed, estimate_noise, tile, save_dir,
                                   on_image=lambda name, p, s: bar.update(1))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for res in report["results"]:
        click.echo(f"\n{report['model']} on {res['data']}, sigma {res['sigma']:g}"
                   + (" (estimated sigma)" if res.get("sigma_estimated") else ""))
        click.echo(f"{'image':<24} {'PSNR':>7} {'SSIM':>7}")
        for r in res["per_image"]:
            extra = f"   sigma~{r['sigma_used']:.2f}" if estimate_noise and "sigma_used" in r else ""
            click.echo(f"{r['image']:<24} {r['psnr']:7.2f} {r['ssim']:7.4f}{extra}")
        click.echo(f"{'mean':<24} {res['mean_psnr']:7.2f} {res['mean_ssim']:7.4f}   (noisy {res['noisy_psnr']:.2f})")
        if "sigma_error" in res:
            click.echo(f"sigma estimate error: mean {res['sigma_error']['mean']:+.2f}, mean abs {res['sigma_error']['mean_abs']:.2f}")


def _progress(n: int):
    """The eval progress bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=n, unit="img", desc="eval", file=sys.stderr, dynamic_ncols=True, disable=None)


def _evaluate_sr(model, data, scales, tile, as_json, device, backend) -> None:
    from ..eval.protocols import evaluate_upscaler
    from ..train.data import list_images

    with _progress(len(list_images(data)) * len(scales)) as bar:
        report = evaluate_upscaler(model, data, scales, tile, device, backend, on_image=lambda *a: bar.update(1))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for res in report["results"]:
        click.echo(f"\n{report['model']} on {res['data']}, x{res['scale']} (Y channel, {res['scale']} px shaved)")
        click.echo(f"{'image':<24} {'PSNR':>7} {'SSIM':>7} {'bicubic':>8}")
        for r in res["per_image"]:
            click.echo(f"{r['image']:<24} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['bicubic_psnr']:8.2f}")
        click.echo(f"{'mean':<24} {res['mean_psnr']:7.2f} {res['mean_ssim']:7.4f} {res['bicubic_psnr']:8.2f}")


def _evaluate_match(model, data, pairs, outliers, ratio, as_json) -> None:
    from ..api import resolve_model
    from ..match.evaluate import evaluate_match
    from ..match.knn_vote import scorer_for
    from ..store.checkpoint import load_model

    nets = {"robust": None}
    for key, name in (("cnnet", "cnnet-match"), ("n3net", model)):  # None: the shipped N³Net
        path = resolve_model(name, "match", backend="torch")
        m = load_model(path)
        nets[key] = m.net.eval()
        if m.info.extra.get("knn"):  # its kNN interpolation too, with the lambda tuned on validation
            scorer, _ = scorer_for(path, m.info, True)
            nets[f"{key}+knn"] = (nets[key], scorer)
    report = evaluate_match(nets, data, pairs, outliers=tuple(outliers), ratio=ratio)
    if model is not None:
        report["n3net"] = str(model)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for res in report["results"]:
        click.echo(f"\npose mAP on {res['data']}, {res['pairs']} pairs ({res['inlier_fraction']:.0%} right matches)")
        click.echo(f"{'method':<12} {'5 deg':>7} {'10 deg':>7} {'20 deg':>7}")
        for m, v in res["map"].items():
            click.echo(f"{m:<12} {v['5']:7.3f} {v['10']:7.3f} {v['20']:7.3f}")


def _evaluate_raw(model, data, levels, baseline, seed, tile, as_json, device, backend) -> None:
    from .. import api
    from ..eval.protocols import RAW_EVAL_LEVELS, evaluate_raw
    from ..pipelines.raw import parse_noise
    from ..train.data import list_images

    parsed = [parse_noise(v) for v in levels] or RAW_EVAL_LEVELS
    runner = api.load_raw_denoiser(model, device, backend)
    base = None if baseline.lower() == "none" else api.load_raw_denoiser(baseline, device, backend)
    if not as_json:
        click.echo(f"running on {runner.describe()}", err=True)
    with _progress(len(list_images(data)) * len(parsed)) as bar:
        report = evaluate_raw(runner, data, parsed, seed, tile, base, on_image=lambda *a: bar.update(1))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"\nraw-space PSNR (dB) on synthetic raw {data}, seed {seed}")
    head = f"{'a':>9} {'b':>9} {'noisy':>7}"
    if base is not None:
        head += f" {report['baseline'][:14]:>14}"
    click.echo(head + f" {report['model'][:14]:>14}")
    for res in report["results"]:
        line = f"{res['a']:9.3g} {res['b']:9.3g} {res['noisy_psnr']:7.2f}"
        if base is not None:
            line += f" {res['baseline_psnr']:14.2f}"
        click.echo(line + f" {res['mean_psnr']:14.2f}")
