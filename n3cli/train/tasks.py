"""What differs between the image tasks the training loop trains: one description per task.

A task says how its training images are read and what a batch makes of their crops (on the
device, :mod:`.batches`), what the model file says about the model, and how the model is validated. Validation runs the task's own evaluation
protocol (:mod:`n3cli.eval.protocols`, what ``n3 eval`` scores), on the network being trained.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..eval import protocols
from ..runtime.torch_runner import TorchRunner
from ..store.modelinfo import ModelInfo
from .batches import (
    Downscaler,
    ImageBank,
    camera_noise,
    gaussian_noise,
    raw_loss_weight,
    raw_noise,
    step_generator,
)

VAL_SEED = 0  # the protocols' default seed: validation sees the test pairs `n3 eval` makes
VAL_TILE = 1 << 14  # validation images run whole


class ImageTask:
    """The base: the config's model fields. Subclasses say what their task adds."""

    image_color: str | None = None  # how training images are read (imaging.color.as_color)
    val_color: str | None = None

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        m = cfg["model"]
        self.extra = {k: m[k] for k in ("description", "license") if m.get(k)}

    def prepare(self, images: list[np.ndarray], device: torch.device) -> None:
        """Load the training images onto ``device`` for :meth:`batch`."""
        self.bank = ImageBank(images, device)

    def batch(self, step: int, rank: int = 0, world: int = 1) -> tuple[Tensor, Tensor]:
        """(network input, target) of this process's share of step ``step``'s batch: a pure
        function of (seed, step), the same whatever the number of processes."""
        d = self.cfg["data"]
        g = step_generator(self.cfg["seed"], step, self.bank.device)
        crops = self.bank.crops(d["batch"], self.crop_size, g, d["rot90"], d["flip"])
        inp, target = self.degrade(crops, g)
        local = d["batch"] // world
        return inp[rank * local : (rank + 1) * local], target[rank * local : (rank + 1) * local]

    @property
    def crop_size(self) -> int:
        return int(self.cfg["data"]["patch"])

    def degrade(self, crops: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """(network input, target) made from clean crops, random draws from ``g``."""
        raise NotImplementedError

    def loss_weight(self, inp: Tensor, target: Tensor) -> Tensor | None:
        """Per-sample weights of the squared error (``optim.loss``), or None for plain MSE."""
        return None

    def model_info(self) -> ModelInfo:
        raise NotImplementedError

    def validate(self, net: nn.Module, info: ModelInfo, images: protocols.Images) -> dict[str, Any]:
        """``{"val_psnr": ..., <the condition>}`` of the network as it is now (left in train mode)."""
        raise NotImplementedError

    def condition(self) -> dict[str, Any]:
        """What the validation PSNR was measured at, for the model file's metrics."""
        raise NotImplementedError

    def _runner(self, net: nn.Module, info: ModelInfo) -> TorchRunner:
        return TorchRunner(net, info)  # a copy of the network, prepared for inference


class DenoiseTask(ImageTask):
    """Denoising, gray or colour: Gaussian noise at a fixed sigma or with a noise-level map, or
    realistic camera noise (colour) with the estimated sigma as the map."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        self.image_color = self.val_color = cfg["model"]["color"]
        self.camera = cfg["noise"]["kind"] == "camera"
        self._pairs: protocols.Pairs | None = None

    def degrade(self, crops: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        n = self.cfg["noise"]
        if self.camera:
            return camera_noise(crops, g, n["gaussian_fraction"], tuple(n["sigma_range"]))
        takes_map = n["kind"] == "map"
        return gaussian_noise(crops, n["kind"], n["sigma"], n["sigma_range"], takes_map, g)

    def model_info(self) -> ModelInfo:
        m, n = self.cfg["model"], self.cfg["noise"]
        if n["kind"] == "fixed":
            noise = {"kind": "fixed", "sigma": float(n["sigma"])}
        elif self.camera:
            noise = {"kind": "map", "trained_on": "camera", "map": "estimated sigma (imaging.estimate, all-patches)"}
            if n["gaussian_fraction"]:
                noise["gaussian_fraction"] = float(n["gaussian_fraction"])
                noise["sigma_range"] = [float(v) for v in n["sigma_range"]]
        else:
            noise = {"kind": n["kind"], "sigma_range": [float(v) for v in n["sigma_range"]]}
        return ModelInfo(name=self.cfg["name"], arch=m["arch"], args=dict(m["args"]), task=m["task"],
                         color=m["color"], noise=noise, min_size=1, extra=dict(self.extra))

    def condition(self) -> dict[str, Any]:
        if self.camera:
            return {"noise": "camera", "seed": VAL_SEED}
        return {"sigma": float(self.cfg["noise"]["val_sigma"])}

    def validate(self, net: nn.Module, info: ModelInfo, images: protocols.Images) -> dict[str, Any]:
        if self.camera:  # `n3 eval real --synthesize` on the validation images
            if self._pairs is None:
                self._pairs = protocols.camera_pairs(images, VAL_SEED)
            rep = protocols.evaluate_real(self._runner(net, info), self._pairs, tile=VAL_TILE)
            return {"val_psnr": rep["results"][0]["mean_psnr"], "val_noise": "camera"}
        sigma = self.condition()["sigma"]
        rep = protocols.evaluate_denoiser(self._runner(net, info), images, [sigma], VAL_SEED, tile=VAL_TILE)
        return {"val_psnr": rep["results"][0]["mean_psnr"], "val_sigma": sigma}


class SRTask(ImageTask):
    """Single-image super-resolution on the luma, bicubic-upsampled input (VDSR-style)."""

    image_color = "y"

    def prepare(self, images: list[np.ndarray], device: torch.device) -> None:
        super().prepare(images, device)
        self.downscale = Downscaler(self.crop_size, self.cfg["data"]["scales"], self.bank.device)

    def degrade(self, crops: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.downscale(crops, g)

    def model_info(self) -> ModelInfo:
        m = self.cfg["model"]
        scales = [int(v) for v in self.cfg["data"]["scales"]]
        return ModelInfo(name=self.cfg["name"], arch=m["arch"], args=dict(m["args"]), task="sr", color="gray",
                         noise={}, scale=scales[0], min_size=1,
                         extra={**self.extra, "scales": scales, "input": "bicubic-y"})

    def condition(self) -> dict[str, Any]:
        return {"scale": self.cfg["data"]["val_scale"]}

    def validate(self, net: nn.Module, info: ModelInfo, images: protocols.Images) -> dict[str, Any]:
        scale = self.condition()["scale"]
        rep = protocols.evaluate_upscaler(self._runner(net, info), images, [scale], tile=VAL_TILE)
        return {"val_psnr": rep["results"][0]["mean_psnr"], "val_scale": scale}


class RawTask(ImageTask):
    """Denoising RGGB mosaics with Poisson-Gaussian noise, from unprocessed sRGB images."""

    image_color = val_color = "rgb"

    def degrade(self, crops: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        nz = self.cfg["noise"]
        return raw_noise(crops, g, nz["a_log_range"], nz["b_over_a_log_range"], nz["correlated_fraction"],
                         nz["max_correlation"])

    def loss_weight(self, inp: Tensor, target: Tensor) -> Tensor | None:
        loss = self.cfg["optim"]["loss"]
        if loss == "mse":
            return None
        return raw_loss_weight(inp, target, 1.0 if loss == "noise_weighted" else 0.5)

    def model_info(self) -> ModelInfo:
        m = self.cfg["model"]
        return ModelInfo(name=self.cfg["name"], arch=m["arch"], args=dict(m["args"]), task="raw", color="bayer",
                         noise={"kind": "poisson-gaussian", "inputs": ["sqrt_a", "sqrt_b"], "model": "var = a*x + b",
                                "a_log_range": list(self.cfg["noise"]["a_log_range"]),
                                "b_over_a_log_range": list(self.cfg["noise"]["b_over_a_log_range"]),
                                **({"correlated_fraction": self.cfg["noise"]["correlated_fraction"],
                                    "max_correlation": self.cfg["noise"]["max_correlation"]}
                                   if self.cfg["noise"]["correlated_fraction"] else {})},
                         min_size=1, extra={**self.extra, "input": "rggb-planes+sqrt_a+sqrt_b"})

    def condition(self) -> dict[str, Any]:
        return {"ab": self.cfg["noise"]["val_ab"]}

    def validate(self, net: nn.Module, info: ModelInfo, images: protocols.Images) -> dict[str, Any]:
        a, b = self.condition()["ab"]
        rep = protocols.evaluate_raw(self._runner(net, info), images, [(a, b)], VAL_SEED, tile=VAL_TILE)
        return {"val_psnr": rep["results"][0]["mean_psnr"], "val_ab": [a, b]}


TASKS: dict[str, type[ImageTask]] = {"denoise": DenoiseTask, "sr": SRTask, "raw": RawTask}


def task_for(cfg: dict[str, Any]) -> ImageTask:
    """The description of the config's task (``model.task``)."""
    return TASKS[cfg["model"]["task"]](cfg)
