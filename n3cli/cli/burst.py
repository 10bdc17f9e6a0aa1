"""`n3 denoise --burst FRAMES... -o OUT` and `n3 upscale --burst`: photos (or raw files) of one scene
merged into one clean output, or enlarged into one."""
from __future__ import annotations

from pathlib import Path

from .common import fail


def burst_output(first: Path, output: str | None, ext: str | None, suffix: str | None) -> Path:
    """Where a burst's result goes: ``-o FILE``, else beside the first frame with ``--suffix``."""
    if output is not None:
        out = Path(output)
        if out.is_dir() or output.endswith(("/", "\\")):
            fail(f"--burst writes one photo: give -o a file name, not the folder {output}")
        if ext is not None and out.suffix.lower().lstrip(".") != ext:
            fail(f"--ext {ext} does not match -o {output}")
        return out
    if not suffix:
        fail("--burst writes one photo: give -o FILE (or --suffix to write it beside the first frame)")
    return first.with_name(f"{first.stem}{suffix}{'.' + ext if ext else first.suffix}")


def run_burst(inputs, output, recursive: bool, ext, suffix, cache, run: dict, overwrite: bool, quiet: bool,
              as_json: bool) -> None:
    """Expand the inputs into frames (files, folders, globs; sorted by name within each), merge
    and denoise them as one job of :func:`~n3cli.cli.batchrun.run_batch` (its rules, lines,
    ``--json`` record and exit codes); ``run``: :func:`n3cli.api.burst_file`'s other arguments."""
    from ..api import burst_file

    def work(frames, dst, rep, on_frame) -> tuple[str, dict]:
        used = burst_file(frames, dst, cache, on_tile=rep.on_tile(), overwrite=overwrite, on_frame=on_frame, **run)
        notes = [f"{used['merged']} of {used['frames']} frames merged"]
        if "noise" in used:
            notes.append(f"noise {used['noise']} one frame")
        if used.get("sigma") is not None:
            notes.append(f"sigma {used['sigma']:.1f} one frame, {used['sigma_merged']:.1f} merged")
        if "noise_kind" in used:
            notes.append("camera noise" if used["noise_kind"] == "real" else "white noise")
        return f"with {used['model']} ({', '.join(notes)})", used

    _run(inputs, output, recursive, ext, suffix, overwrite, quiet, as_json, "denoise", _accept, work)


def run_upscale_burst(inputs, output, recursive: bool, ext, suffix, run: dict, overwrite: bool, quiet: bool,
                      as_json: bool) -> None:
    """:func:`run_burst` for `n3 upscale --burst` (:func:`n3cli.api.upscale_burst_file`, ``run``
    its other arguments); photos only."""
    from ..api import is_image_path, upscale_burst_file

    def work(frames, dst, rep, on_frame) -> tuple[str, dict]:
        used = upscale_burst_file(frames, dst, on_tile=rep.on_tile(), on_refine=rep.on_tile("  refining", "window"),
                                  overwrite=overwrite, on_frame=on_frame, **run)
        notes = [f"x{used['scale']:.4g}", f"{used['merged']} of {used['frames']} frames"]
        if "denoise_model" in used:
            notes.append(f"denoised by {used['denoise_model']}")
        return f"with {used['model']} ({', '.join(notes)})", used

    _run(inputs, output, recursive, ext, suffix, overwrite, quiet, as_json, "upscale", is_image_path, work)


def _run(inputs, output, recursive: bool, ext, suffix, overwrite: bool, quiet: bool, as_json: bool, command: str,
         accept, work) -> None:
    from ..api import Job, expand_inputs, same_file

    frames = [f for f, _ in expand_inputs(inputs, recursive, accept)]
    if not frames:
        fail("no photos found in the inputs")
    dst = burst_output(frames[0], output, ext, suffix)
    from .batchrun import run_batch

    def process(job, rep) -> tuple[str, dict]:
        registering = rep.on_tile("  frames", "frame") if len(frames) > 1 else None  # a stack's count is its own

        def on_frame(i: int, rec: dict) -> None:
            if not rec["used"]:
                rep.say(f"note: {rec['input']} {rec['reason']}: left out")
            if registering is not None:
                registering(i, len(frames) - 1)

        said, used = work(frames, job.dst, rep, on_frame)
        also = f" and {used['compare']}" if "compare" in used else ""
        if "compare_skipped" in used:
            rep.say(f"skip {used['compare_skipped']} (exists; --overwrite to replace)")
        if "warning" in used:
            rep.say(f"note: {job.src}: {used['warning']}")
        return f"wrote {job.dst}{also} {said}", used

    clash = next((f for f in frames if same_file(f, dst)), None)
    error = f"{clash}: output would overwrite an input; choose another -o" if clash is not None else None
    run_batch([Job(frames[0], dst, error)], process, command, overwrite, quiet, as_json)


def _accept(path) -> bool:  # photos and raw files: burst_file takes either kind, not both at once
    from ..api import is_image_path, is_raw_path

    return is_image_path(path) or is_raw_path(path)
