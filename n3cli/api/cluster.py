"""Batches on a Ray cluster: the jobs `n3 denoise` and `n3 upscale` plan locally, run by workers
that each load the model once (docs/usage.md, "Many machines").

Ray is optional (``pip install "n3cli[ray]"``) and imported only here, when asked for. Every
rule of a local batch holds: inputs are never overwritten, existing outputs are skipped unless
``overwrite``, each output is written to a temporary file and renamed, a bad file is reported
and the rest go on. A worker that dies mid-job is restarted and its job run again; the dead
worker's temporary file is removed (no partial output), and finished outputs stay.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import N3Error

RAY_HINT = 'pip install "n3cli[ray]"'


def import_ray():
    """The ``ray`` module, or a one-line N3Error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise N3Error(f"--ray needs Ray, which is not installed: {RAY_HINT}") from None
    return ray


class ImageWorker:
    """One worker of a batch: the model loaded once, then one job at a time (plain class; run as a
    Ray actor by :func:`run_jobs`, and picklable for any other executor)."""

    def __init__(self, task: str, model: str | None, options: dict[str, Any], device: str = "auto",
                 backend: str = "auto", precision: str = "fp32") -> None:
        from .loading import ModelCache

        if task not in ("denoise", "upscale"):
            raise ValueError(f"unknown task {task!r}")
        self.task, self.options, self.device, self.backend = task, dict(options), device, backend
        self.precision = precision
        photo_noise = self.options.pop("photo_noise", "auto")
        self.model = ModelCache(model, device, backend, precision, photo_noise) if task == "denoise" else model
        if self.options.pop("denoise", False):  # upscale --denoise: the shipped denoisers first
            self.options["denoiser"] = ModelCache(None, device, backend, precision, photo_noise)
        self._upscalers: dict[int | None, Any] = {}

    def pid(self) -> int:
        return os.getpid()

    def run(self, src: str, dst: str, overwrite: bool, error: str | None = None) -> tuple[str, str, int, dict]:
        """(``done`` | ``skipped`` | ``failed``, the line to report, this worker's pid, the job's
        record: :func:`n3cli.api.job_record`) for one job, as a local batch does it."""
        from .files import job_record

        status, line, used = self._run(src, dst, overwrite, error)
        rec = job_record(src, dst, {"done": "written"}.get(status, status), used,
                         line if status == "failed" else None)
        return status, line, os.getpid(), rec

    def _run(self, src: str, dst: str, overwrite: bool, error: str | None) -> tuple[str, str, dict | None]:
        from .files import run_job

        return run_job(src, dst, overwrite, lambda: self._write(Path(src), Path(dst)), error)

    def _write(self, src: Path, dst: Path) -> tuple[str, dict]:
        from ..pipelines.sr import sr_factor
        from .files import denoise_file, upscale_file
        from .loading import load_upscaler

        if self.task == "denoise":
            used = denoise_file(src, dst, self.model, **self.options)
            what = f" (noise {used['noise']})" if "noise" in used else \
                (f" (sigma {used['sigma']:.1f})" if used.get("sigma") is not None else "")
            return f"wrote {dst} with {used['model']}{what}", used
        scale = self.options.get("scale")
        k = None if scale is None else sr_factor(float(scale))  # None: --width/--height, per image
        if k not in self._upscalers:
            self._upscalers[k] = load_upscaler(self.model, k, self.device, self.backend, self.precision)
        opts = {key: v for key, v in self.options.items() if key != "scale"}
        used = upscale_file(src, dst, scale, self._upscalers[k], **opts)
        first = f", denoised first with {used['denoise_model']}" if "denoise_model" in used else ""
        return f"wrote {dst} (x{used['scale']:.4g}) with {used['model']}{first}", used


def run_jobs(jobs: Iterable[Any], task: str, address: str, model: str | None, options: dict[str, Any],
             overwrite: bool = False, device: str = "auto", backend: str = "auto", workers: int | None = None,
             gpus_per_worker: float = 0.0, on_result: Callable[[str, str], None] | None = None,
             on_workers: Callable[[list[int]], None] | None = None, precision: str = "fp32",
             on_record: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run ``jobs`` (:func:`n3cli.api.plan_jobs`) on Ray at ``address`` (``local``: a cluster of
    this machine started for the batch; ``auto``: the running cluster; else its address).

    ``workers`` actors (default: one per CPU the cluster has, or per GPU when ``gpus_per_worker``)
    each load the model once. Returns ``{"done", "skipped", "failed": [lines], "workers": {pids}}``
    (the worker processes that finished jobs: restarted ones too); ``on_result`` gets each job's
    (status, line) as it finishes, ``on_record`` its record (:func:`n3cli.api.job_record`).
    ``on_workers`` gets the first workers' pids.
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        started = True
    try:
        res = ray.cluster_resources()
        if workers is None:
            workers = int(res.get("GPU", 0) // gpus_per_worker) if gpus_per_worker else int(res.get("CPU", 1))
        workers = max(1, workers)
        actor = ray.remote(num_cpus=1, num_gpus=gpus_per_worker, max_restarts=-1,
                           max_task_retries=-1)(ImageWorker)
        pool = [actor.remote(task, model, options, device if not gpus_per_worker else "cuda", backend, precision)
                for _ in range(workers)]
        if on_workers:
            on_workers(ray.get([w.pid.remote() for w in pool]))
        jobs = list(jobs)
        pending = {}
        for i, job in enumerate(jobs):
            ref = pool[i % len(pool)].run.remote(str(job.src), str(job.dst), overwrite, job.error)
            pending[ref] = job
        tally: dict[str, Any] = {"done": 0, "skipped": 0, "failed": [], "workers": set()}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            pending.pop(ready[0])
            status, line, pid, rec = ray.get(ready[0])
            tally["workers"].add(pid)
            if status == "failed":
                tally["failed"].append(line)
            else:
                tally[status] += 1
            if on_result:
                on_result(status, line)
            if on_record:
                on_record(rec)
        from ..io.atomic import remove_stale_parts

        for job in jobs:  # a worker killed mid-job leaves its temporary file: never a partial output
            remove_stale_parts(job.dst)
        return tally
    finally:
        if started:
            ray.shutdown()


class RayDenoiser:
    """For pipelines that already use Ray Data: ``ds.map_batches(RayDenoiser, fn_constructor_kwargs=
    {...}, concurrency=N, batch_size=...)``. The model is loaded once per worker, in ``__init__``.

    A batch is a dict with ``"image"`` (arrays H x W x C or H x W, uint8/uint16/float) or ``"path"``
    (image files to read); the same batch comes back with ``"denoised"`` added, each array in its
    input's type. ``model``, ``sigma``, ``strength``, ``chroma_strength``, ``tta``, ``tile``: as
    :func:`n3cli.api.denoise`;
    ``device``, ``backend``, ``precision``: as :func:`n3cli.api.load_denoiser`; ``photo_noise``:
    ``auto`` (each colour image's model picked by its noise), ``gaussian`` or ``real``
    (:class:`n3cli.api.ModelCache`).
    """

    def __init__(self, model: str | None = None, sigma: float | None = None, strength: float = 1.0,
                 tta: bool = False, tile: int | None = None, device: str = "auto", backend: str = "auto",
                 precision: str = "fp32", photo_noise: str = "auto", chroma_strength: float | None = None) -> None:
        from .loading import ModelCache

        self.cache = ModelCache(model, device, backend, precision, photo_noise)
        self.sigma, self.strength, self.tta, self.tile = sigma, strength, tta, tile
        self.chroma_strength = chroma_strength

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from ..io.images import read_image
        from ..pipelines.denoise import denoise

        if "image" in batch:
            images = list(batch["image"])
        elif "path" in batch:
            images = [read_image(str(p)).pixels for p in batch["path"]]
        else:
            raise N3Error("a batch for RayDenoiser needs an 'image' or a 'path' column")
        out = []
        for px in images:
            px = np.asarray(px)
            model, _ = self.cache.for_image(px)
            out.append(denoise(model, px, self.sigma, self.tile, strength=self.strength, tta=self.tta,
                               chroma_strength=self.chroma_strength))
        batch = dict(batch)
        batch["denoised"] = out if any(o.shape != out[0].shape for o in out) else np.stack(out)
        return batch
