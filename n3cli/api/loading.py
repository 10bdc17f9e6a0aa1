"""Finding and loading models: shipped names, paths, defaults per image kind; each model
loaded once per run (:class:`ModelCache`). Nothing here imports torch until a torch model is loaded."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import N3Error
from ..imaging.noise_kind import NoiseKind, noise_kind
from ..runtime.backends import backend_for, open_runner
from ..runtime.runner import Runner
from ..store import zoo


def select_device(device: str = "auto"):
    """The torch device for ``auto``/``cpu``/``cuda`` (``cuda`` without a GPU is an error)."""
    from ..runtime.torch_runner import select_device as _select

    return _select(device)


def resolve_model(model: str | os.PathLike | None, color: str = "gray", backend: str = "auto") -> Path:
    """A model file from a shipped name, a path, or (None) the shipped default for ``color``
    (``gray``, ``rgb``, ``real`` for photos with real camera noise, ``bayer``, or
    ``sr_x2``/``sr_x3``/``sr_x4`` for super-resolution).

    Shipped models resolve to their ``.onnx`` file for ``backend="onnx"``, else to the checkpoint.
    """
    if model is None:
        return zoo.default_for(color).file_for("onnx" if backend == "onnx" else "torch")
    p = Path(model)
    if p.suffix.lower() in (".safetensors", ".onnx") or p.exists() or os.sep in str(model):
        return p
    return zoo.find(str(model)).file_for("onnx" if backend == "onnx" else "torch")


def load_denoiser(model: str | os.PathLike | None = None, color: str = "gray", device: str = "auto",
                  backend: str = "auto", precision: str = "fp32") -> Runner:
    """Load a denoising model by name or path (None: the shipped default for ``color``).

    ``backend``: ``torch``, ``onnx`` (onnxruntime; shipped models have an exported copy), or
    ``auto`` (by the file's extension). ``precision``: ``fp32``, or ``bf16`` (torch: convolutions
    in bfloat16, the N³ blocks in float32, a tile that comes out non-finite or black run again in
    float32; docs/usage.md gives the measured differences).
    """
    path = resolve_model(model, color, backend)
    runner = open_runner(path, backend_for(path, backend), device, precision)
    if runner.info.task != "denoise":
        raise N3Error(f"{path}: a {runner.info.task} model, not a denoiser")
    return runner


def load_raw_denoiser(model: str | os.PathLike | None = None, device: str = "auto", backend: str = "auto",
                      precision: str = "fp32") -> Runner:
    """Load a RAW (Bayer) denoising model by name or path (None: the shipped one); ``precision``:
    see :func:`load_denoiser`."""
    path = resolve_model(model, "bayer", backend)
    runner = open_runner(path, backend_for(path, backend), device, precision)
    if runner.info.task != "raw":
        raise N3Error(f"{path}: a {runner.info.task} model, not a RAW denoiser (see `n3 models`)")
    return runner


def load_matcher(model: str | os.PathLike | None = None, knn: bool | None = None):
    """A match network by name or path (None: the shipped N³Net) for :func:`n3cli.match.pipeline.match_images`.

    Returns ``(net, name, knn_scorer or None, warning or None)``. ``knn``: True uses the
    model's kNN datastore (an error if it has none or it does not match), False never, None
    when the model carries one whose validation showed a gain.
    """
    from ..match.knn_vote import scorer_for
    from ..store.checkpoint import load_model

    path = resolve_model(model, "match", backend="torch")
    m = load_model(path)
    if m.info.task != "match":
        raise N3Error(f"{path}: a {m.info.task} model, not a match network")
    scorer, warning = scorer_for(path, m.info, knn)
    return m.net.eval(), m.info.name, scorer, warning


def load_upscaler(model: str | os.PathLike | None = None, scale: int | None = 2, device: str = "auto",
                  backend: str = "auto", precision: str = "fp32") -> Runner:
    """Load a super-resolution model for ``scale`` by name or path (None: the shipped one);
    ``scale`` None: for whichever of its scales each image needs (checked by
    :func:`n3cli.api.upscale`); ``precision``: see :func:`load_denoiser`."""
    from ..pipelines.sr import require_scale

    path = resolve_model(model, f"sr_x{scale or 2}", backend)
    runner = open_runner(path, backend_for(path, backend), device, precision)
    if runner.info.task != "sr":
        raise N3Error(f"{path}: a {runner.info.task} model, not a super-resolution model")
    if scale is not None:
        require_scale(runner, scale)
    return runner


PHOTO_NOISE = ("auto", "gaussian", "real")


class ModelCache:
    """Loads each model once per run; picks the shipped default by image kind when none is named.

    ``photo_noise``: what the noise of gray and colour photos is when no model is named:
    ``auto`` (each colour photo's noise read by :func:`n3cli.imaging.noise_kind.noise_kind`: the
    real camera noise model when it is not white, else the Gaussian one; gray photos get the
    Gaussian model), ``gaussian`` (the Gaussian models) or ``real`` (the real camera noise model,
    for photos straight from a camera or phone). Raw files always get the RAW model.
    """

    def __init__(self, model: str | os.PathLike | None, device: str = "auto", backend: str = "auto",
                 precision: str = "fp32", photo_noise: str = "auto") -> None:
        if photo_noise not in PHOTO_NOISE:
            raise N3Error(f"noise {photo_noise!r}: choose one of {', '.join(PHOTO_NOISE)}")
        if photo_noise == "real" and model is not None:
            raise N3Error(f"noise {photo_noise!r} picks the shipped model; it does not go with a named model")
        self.model, self.device, self.backend, self.precision = model, device, backend, precision
        self.photo_noise = photo_noise
        if backend == "torch" or (backend == "auto" and not str(model or "").lower().endswith(".onnx")):
            select_device(device)  # fail on a bad --device before any image
        self._loaded: dict[str, Runner] = {}  # by file: one model serves every kind it is used for
        self._kinds: dict[str, Runner] = {}

    def for_channels(self, channels: int) -> Runner:
        """The model for a photo of ``channels`` without reading its noise (``auto``: the Gaussian one)."""
        if self.photo_noise == "real":
            return self._for("real")
        return self._for("rgb" if channels == 3 else "gray")

    def for_image(self, pixels) -> tuple[Runner, NoiseKind | None]:
        """The model for the photo ``pixels`` (H x W x C or H x W; float in [0, 1], uint8 or
        uint16), and the noise kind read from it where ``auto`` picked by it (else None)."""
        from ..pipelines.arrays import as_float_image

        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        if self.photo_noise != "auto" or self.model is not None or channels != 3:
            return self.for_channels(channels), None
        kind = noise_kind(as_float_image(pixels)[0])
        return self._for("real" if kind.kind == "real" else "rgb"), kind

    def for_raw(self) -> Runner:
        return self._for("bayer")

    def _for(self, kind: str) -> Runner:
        # resolved once per kind: a shipped file's checksum is read once per run, not once per image
        if kind not in self._kinds:
            path = str(resolve_model(self.model, kind, self.backend))
            if path not in self._loaded:
                if kind == "bayer":
                    runner = load_raw_denoiser(path, self.device, self.backend, self.precision)
                else:
                    runner = load_denoiser(path, device=self.device, backend=self.backend, precision=self.precision)
                self._loaded[path] = runner
            self._kinds[kind] = self._loaded[path]
        return self._kinds[kind]

    def first(self, raw: bool) -> Runner:
        """Load the named model (to fail fast on a broken one) as what it is."""
        return self.for_raw() if raw else self.for_channels(1)
