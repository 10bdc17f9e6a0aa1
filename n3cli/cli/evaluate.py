"""`n3 eval denoise|sr|raw|real|flat|match`: the evaluation protocols, a subcommand per task.

The spelling of earlier releases (`n3 eval --task sr ...`, `n3 eval --data D --sigma 25`) still
works for one release, with a deprecation line on stderr.
"""
from __future__ import annotations

import json
import sys

import click

from .common import backend_option, device_option, fail, reports_errors, tta_option

TASKS = ("denoise", "sr", "raw", "real", "flat", "match")


class _EvalGroup(click.Group):
    """A group that also takes the old single-command spelling: no subcommand name first means
    the task of ``--task`` (default denoise), with the rest of the arguments passed on."""

    def resolve_command(self, ctx, args):
        if args and (args[0] in self.commands or args[0] in ("-h", "--help")):
            return super().resolve_command(ctx, args)
        task, rest, i = "denoise", [], 0
        while i < len(args):
            if args[i] == "--task" and i + 1 < len(args):
                task, i = args[i + 1], i + 2
                continue
            if args[i].startswith("--task="):
                task, i = args[i].split("=", 1)[1], i + 1
                continue
            rest.append(args[i])
            i += 1
        if task not in self.commands:
            fail(f"--task {task!r}: choose one of {', '.join(TASKS)}")
        click.echo(f"note: `n3 eval --task {task} ...` is deprecated; use `n3 eval {task} ...`", err=True)
        return task, self.commands[task], rest


@click.group("eval", cls=_EvalGroup, context_settings={"ignore_unknown_options": True,
                                                       "allow_interspersed_args": False})
def evaluate():
    """Measure a model with the paper's protocol: `n3 eval denoise|sr|raw|real|flat|match --help`.

    \b
    denoise  Gaussian noise added to clean [0,1] images, not clipped or quantised, fixed seed;
             float PSNR and SSIM per image and mean.
    sr       LR by MATLAB-compatible bicubic downscaling rounded to 8 bits; PSNR/SSIM on the
             BT.601 Y channel with `scale` pixels shaved; bicubic alongside.
    raw      --data's sRGB images unprocessed to linear RGGB mosaics (fixed seed), Poisson-Gaussian
             noise at four (a, b) levels; raw-space PSNR of the noisy input, the DnCNN ablation
             and the RAW N³Net.
    real     noisy/clean photo pairs (noisy/ + clean/, or X_real.* + X_mean.*), --synthesize
             pairs from clean images with realistic camera noise, or --from-raw pairs from real
             Bayer raw files; PSNR/SSIM on 8-bit RGB with the noise level the estimator reads.
    flat     real noisy photos (images, or Bayer raw files developed to camera JPEGs) with no
             clean reference: noise left in their flattest windows (0 flat, 1 untouched); a
             RAW model is measured on the raw files' mosaics.
    match    mAP of the pose error at 5/10/20 degrees for robust estimation on all matches, the
             shipped CNNet and N³Net (--model replaces N³Net), on synthetic pairs or --data FILE.
    """


model_option = click.option("-m", "--model", default=None, metavar="NAME|FILE",
                            help="Model to evaluate [default: the one `n3 denoise`/`n3 upscale` picks].")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
tile_option = click.option("-t", "--tile", type=click.IntRange(min=64), default=None,
                           help="Tile size [default: from free memory].")


def _data_option(help: str):
    return click.option("--data", type=click.Path(exists=True), default=None, help=help)


def _denoiser_run_options(save_help: str):
    """The options every image-denoising protocol shares (--save, --tta, --tile, --json, --device,
    --backend), and its one-line error reporting."""
    save = click.option("--save", "save_dir", type=click.Path(file_okay=False), default=None, help=save_help)

    def apply(f):
        for deco in (reports_errors, backend_option, device_option, json_option, tile_option, tta_option, save):
            f = deco(f)
        return f
    return apply


@evaluate.command("denoise")
@model_option
@_data_option("Folder of clean images (e.g. Set12, BSD68, CBSD68).")
@click.option("-s", "--sigma", "sigmas", multiple=True, type=click.FloatRange(min=0, max=255),
              help="Noise level(s), 0-255 units; repeat for several.")
@click.option("--seed", default=0, show_default=True, help="Noise seed (the same noise for every model).")
@click.option("--estimate-noise", is_flag=True, help="Give noise-aware models the estimated sigma, not the true one.")
@_denoiser_run_options("Also write the denoised images (16-bit PNG) here.")
def eval_denoise(model, data, sigmas, seed, estimate_noise, save_dir, tta, tile, as_json, device, backend):
    """Gaussian denoising (FACTS §5): float PSNR and SSIM per image and mean."""
    from .. import api

    if data is None:
        fail("missing option --data (a folder of clean images)")
    if not sigmas:
        fail("missing option --sigma (noise level in 0-255 units; repeat for several)")
    with _progress(api.count_images(data) * len(sigmas)) as bar:
        report = api.evaluate_denoise(model, data, list(sigmas), seed, estimate_noise, tile, save_dir, device, backend,
                                      on_image=lambda name, p, s: bar.update(1), tta=tta)
    if not as_json:
        click.echo(f"ran on {report['backend']}", err=True)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for res in report["results"]:
        click.echo(f"\n{report['model']} on {res['data']}, sigma {res['sigma']:g}"
                   + (" (estimated sigma)" if res.get("sigma_estimated") else "") + (", --tta" if tta else ""))
        click.echo(f"{'image':<24} {'PSNR':>7} {'SSIM':>7}")
        for r in res["per_image"]:
            extra = f"   sigma~{r['sigma_used']:.2f}" if estimate_noise and "sigma_used" in r else ""
            click.echo(f"{r['image']:<24} {r['psnr']:7.2f} {r['ssim']:7.4f}{extra}")
        click.echo(f"{'mean':<24} {res['mean_psnr']:7.2f} {res['mean_ssim']:7.4f}   (noisy {res['noisy_psnr']:.2f})")
        if "sigma_error" in res:
            click.echo(f"sigma estimate error: mean {res['sigma_error']['mean']:+.2f}, mean abs {res['sigma_error']['mean_abs']:.2f}")




@evaluate.command("sr")
@model_option
@_data_option("Folder of HR images (e.g. Set5, Set14).")
@click.option("--scale", "scales", multiple=True, type=click.Choice(["2", "3", "4"]),
              help="Upscaling factor(s); repeat for several.")
@tta_option
@tile_option
@json_option
@device_option
@backend_option
@reports_errors
def eval_sr(model, data, scales, tta, tile, as_json, device, backend):
    """Super-resolution (FACTS §7): PSNR/SSIM on Y with `scale` pixels shaved, bicubic alongside."""
    if data is None:
        fail("missing option --data (a folder of clean images)")
    if not scales:
        fail("`n3 eval sr` needs --scale (2, 3 or 4; repeat for several)")
    _evaluate_sr(model, data, [int(s) for s in scales], tile, as_json, device, backend, tta)


@evaluate.command("raw")
@model_option
@_data_option("Folder of sRGB images made into synthetic raw (e.g. CBSD68).")
@click.option("--level", "levels", multiple=True, metavar="A,B",
              help="Noise level(s) var = a*x + b; repeat for several [default: the four standard levels].")
@click.option("--baseline", default="dncnn-raw", show_default=True, metavar="NAME|FILE",
              help="The model to compare against (the DnCNN ablation); 'none' for no baseline.")
@click.option("--seed", default=0, show_default=True, help="Noise seed (the same noise for every model).")
@tta_option
@tile_option
@json_option
@device_option
@backend_option
@reports_errors
def eval_raw(model, data, levels, baseline, seed, tta, tile, as_json, device, backend):
    """Raw denoising: raw-space PSNR on synthetic raw at each (a, b), with the DnCNN ablation."""
    if data is None:
        fail("missing option --data (a folder of clean images)")
    _evaluate_raw(model, data, levels, baseline, seed, tile, as_json, device, backend, tta)


@evaluate.command("real")
@click.option("-m", "--model", default=None, metavar="NAME|FILE",
              help="Model to evaluate [default: the one `n3 denoise --noise real` picks].")
@_data_option("Folder of noisy/clean pairs: noisy/ and clean/ subfolders (same names), or X_real.* and X_mean.* "
              "files; with --synthesize, a folder of clean images.")
@click.option("--synthesize", is_flag=True,
              help="Make the pairs from --data's clean images with realistic camera noise (demosaicing, "
                   "development, sharpening, JPEG; fixed draws per image from --seed).")
@click.option("--from-raw", is_flag=True,
              help="Make the pairs from --data's real Bayer raw files: in each colour plane's 3x3 blocks the "
                   "centre photosite is the noisy image, the mean of the other 8 the clean one, developed alike.")
@click.option("--push", "pushes", multiple=True, type=click.FloatRange(min=1), metavar="K",
              help="With --from-raw: also develop each pair K times brighter; repeat [default: 1 and 4].")
@click.option("--seed", default=0, show_default=True, help="With --synthesize: the seed of the noise and cameras.")
@click.option("--sigma", type=click.FloatRange(min=0, max=255), default=None,
              help="Give noise-aware models this level [default: the estimator's reading of each image].")
@_denoiser_run_options("Also write the denoised images (8-bit PNG) here.")
def eval_real(model, data, synthesize, from_raw, pushes, seed, sigma, save_dir, tta, tile, as_json, device, backend):
    """Real camera noise: PSNR/SSIM on 8-bit RGB over noisy/clean photo pairs."""
    from .. import api

    if data is None:
        fail("missing option --data (a folder of noisy/clean pairs, or of clean images with --synthesize)")
    if synthesize and from_raw:
        fail("--synthesize and --from-raw: choose one")
    if pushes and not from_raw:
        fail("--push goes with --from-raw")
    with _progress(None if from_raw else api.count_images(data, pairs=not synthesize)) as bar:
        report = api.evaluate_real_noise(model, data, synthesize, seed, sigma, tile, save_dir, device, backend,
                                         on_image=lambda *a: bar.update(1), tta=tta, from_raw=from_raw,
                                         pushes=tuple(pushes) or (1.0, 4.0))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"ran on {report['backend']}", err=True)
    res = report["results"][0]
    click.echo(f"\n{report['model']} on {res['data']} ({res['pairs']} pairs, {res['pairs_from']}; sigma "
               + (f"{res['sigma']:g})" if "sigma" in res else "estimated per image)") + (", --tta" if tta else ""))
    click.echo(f"{'image':<24} {'PSNR':>7} {'SSIM':>7} {'noisy':>7} {'sigma~':>7}")
    for r in res["per_image"]:
        click.echo(f"{r['image']:<24} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['noisy_psnr']:7.2f} {r['sigma_estimated']:7.2f}")
    click.echo(f"{'mean':<24} {res['mean_psnr']:7.2f} {res['mean_ssim']:7.4f} {res['noisy_psnr']:7.2f}")


@evaluate.command("flat")
@click.option("-m", "--model", default=None, metavar="NAME|FILE",
              help="Model to evaluate [default: the one `n3 denoise --noise real` picks].")
@_data_option("Folder (or one file) of real noisy photos: images as they are, Bayer raw files developed to "
              "camera JPEGs (LibRaw's defaults, camera white balance); for a RAW model, its Bayer raw files.")
@click.option("--crop", default=None, metavar="WxH",
              help="Measure the centre WxH of each photo (e.g. 1000x800; photosites for a RAW model) "
                   "[default: all of it].")
@click.option("--jpeg-quality", type=click.IntRange(1, 100), default=92, show_default=True,
              help="JPEG quality raw files are developed to.")
@click.option("--sigma", type=click.FloatRange(min=0, max=255), default=None,
              help="Give noise-aware models this level [default: the estimator's reading of each photo].")
@_denoiser_run_options("Also write the denoised photos (8-bit PNG) here.")
def eval_flat(model, data, crop, jpeg_quality, sigma, save_dir, tta, tile, as_json, device, backend):
    """Real photos without a clean reference: the noise left in their flattest 24x24 windows
    (output std / input std, median per photo; 1 untouched, 0 flat). A blur also scores well:
    read it beside `n3 eval real`. A RAW model (-m n3net-raw) is measured on the mosaics of
    the Bayer raw files, with the noise n3 reads from each."""
    from .. import api

    if data is None:
        fail("missing option --data (a folder or file of real noisy photos)")
    try:
        size = api.parse_crop(crop)
    except ValueError as e:
        fail(f"--crop: {e}")
    with _progress(None) as bar:  # (raw files that are not Bayer are found out only when read)
        report = api.evaluate_flat_noise(model, data, size, jpeg_quality, sigma, tile, save_dir, device, backend,
                                         on_image=lambda *a: bar.update(1), tta=tta)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"ran on {report['backend']}", err=True)
    res = report["results"][0]
    for why in res["skipped"]:
        click.echo(f"left out: {why}", err=True)
    click.echo(f"\n{report['model']} on {res['data']} ({res['photos']} photo{'' if res['photos'] == 1 else 's'}"
               + (f", centre {res['crop']}" if "crop" in res else "") + "; "
               + ("the mosaics, with the noise n3 reads from each file)" if report.get("mosaic") else "sigma "
                  + (f"{res['sigma']:g})" if "sigma" in res else "estimated per photo)")) + (", --tta" if tta else ""))
    mosaic = report.get("mosaic", False)
    # sRGB: the estimated sigma and the windows' noise in 0-255; a mosaic: n3's (a, b) and linear noise x 1000
    level = (lambda r: f"a {r['a']:.2e} b {r['b']:.2e}") if mosaic else (lambda r: f"{r['sigma_estimated']:7.2f}")
    click.echo(f"{'photo':<28} {'size':>10} {'a, b (n3 reads)' if mosaic else 'sigma~':>{22 if mosaic else 7}} "
               f"{'windows':>7} {'noise in' + (' x1e3' if mosaic else ''):>13} {'left':>6}")
    for r in res["per_image"]:
        size_txt = f"{r['size'][0]}x{r['size'][1]}"
        if "noise_left" not in r:
            click.echo(f"{r['image']:<28} {size_txt:>10} {level(r)}  no flat window")
            continue
        noise_in = r["input_noise"] * 1e3 if mosaic else r["input_noise"]
        click.echo(f"{r['image']:<28} {size_txt:>10} {level(r)} {r['windows']:7d} {noise_in:13.2f} "
                   f"{r['noise_left']:6.3f}")
    if res["mean_noise_left"] is not None:
        click.echo(f"{'mean noise left':<28} {res['mean_noise_left']:>{10 + (22 if mosaic else 7) + 7 + 13 + 10}.3f}")


@evaluate.command("match")
@model_option
@_data_option("A pairs file, or a folder with its pairs.txt [default: the synthetic test set].")
@click.option("--pairs", type=click.IntRange(min=1), default=200, show_default=True,
              help="Number of synthetic test pairs (fixed seed).")
@click.option("--outliers", type=(click.FloatRange(0, 0.99), click.FloatRange(0, 0.99)), default=(0.5, 0.95),
              show_default=True, metavar="LO HI", help="Range of wrong-match fractions of the synthetic pairs.")
@click.option("--ratio", type=click.FloatRange(0, 1, min_open=True), default=0.8, show_default=True,
              help="With --data: SIFT ratio test; 1 keeps every nearest neighbour (CNNet's protocol).")
@json_option
@reports_errors
def eval_match(model, data, pairs, outliers, ratio, as_json):
    """Correspondences: pose mAP at 5/10/20 degrees of robust estimation, CNNet and N³Net."""
    _evaluate_match(model, data, pairs, outliers, None if ratio >= 1 else ratio, as_json)


def _progress(n: int | None):
    """The eval progress bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=n, unit="img", desc="eval", file=sys.stderr, dynamic_ncols=True, disable=None)


def _evaluate_sr(model, data, scales, tile, as_json, device, backend, tta=False) -> None:
    from .. import api

    with _progress(api.count_images(data) * len(scales)) as bar:
        report = api.evaluate_upscale(model, data, scales, tile, device, backend, on_image=lambda *a: bar.update(1),
                                      tta=tta)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for res in report["results"]:
        click.echo(f"\n{report['model']} on {res['data']}, x{res['scale']} (Y channel, {res['scale']} px shaved)"
                   + (", --tta" if tta else ""))
        click.echo(f"{'image':<24} {'PSNR':>7} {'SSIM':>7} {'bicubic':>8}")
        for r in res["per_image"]:
            click.echo(f"{r['image']:<24} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['bicubic_psnr']:8.2f}")
        click.echo(f"{'mean':<24} {res['mean_psnr']:7.2f} {res['mean_ssim']:7.4f} {res['bicubic_psnr']:8.2f}")


def _evaluate_match(model, data, pairs, outliers, ratio, as_json) -> None:
    from .. import api

    report = api.evaluate_matching(model, data, pairs, tuple(outliers), ratio)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for res in report["results"]:
        click.echo(f"\npose mAP on {res['data']}, {res['pairs']} pairs ({res['inlier_fraction']:.0%} right matches)")
        click.echo(f"{'method':<12} {'5 deg':>7} {'10 deg':>7} {'20 deg':>7}")
        for m, v in res["map"].items():
            click.echo(f"{m:<12} {v['5']:7.3f} {v['10']:7.3f} {v['20']:7.3f}")


def _evaluate_raw(model, data, levels, baseline, seed, tile, as_json, device, backend, tta=False) -> None:
    from .. import api

    parsed = [api.parse_noise(v) for v in levels] or None
    base = None if baseline.lower() == "none" else baseline
    with _progress(api.count_images(data) * (len(parsed) if parsed else 4)) as bar:
        report = api.evaluate_raw_denoise(model, data, parsed, base, seed, tile, device, backend,
                                          on_image=lambda *a: bar.update(1), tta=tta)
    if not as_json:
        click.echo(f"ran on {report['backend']}", err=True)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"\nraw-space PSNR (dB) on synthetic raw {data}, seed {seed}" + (", --tta" if tta else ""))
    head = f"{'a':>9} {'b':>9} {'noisy':>7}"
    names = (report.get("baseline"), report["model"])
    if names[0] == names[1]:  # two files of one model (a run against the shipped file): say which column is which
        click.echo(f"baseline: {baseline}; model: {model or names[1]}")
        names = ("baseline", "model")
    if "baseline" in report:
        head += f" {names[0][:14]:>14}"
    click.echo(head + f" {names[1][:14]:>14}")
    for res in report["results"]:
        line = f"{res['a']:9.3g} {res['b']:9.3g} {res['noisy_psnr']:7.2f}"
        if "baseline_psnr" in res:
            line += f" {res['baseline_psnr']:14.2f}"
        click.echo(line + f" {res['mean_psnr']:14.2f}")
