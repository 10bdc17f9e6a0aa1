"""The onnxruntime backend: runs a file made by ``n3 export``. Never imports torch.

An exported file describes itself like a checkpoint: its ``metadata_props`` carry the model's
config (key ``n3cli``) and what the runtime needs to feed the graph (key ``n3cli.graph``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, N3Error
from ..store.onnx_meta import read_graph_meta
from .runner import DEFAULT_OVERLAP, TileMemoryError, cpu_tile

BYTES_PER_PIXEL = 8000  # measured peak working memory of the exported N³Net on onnxruntime (CPU), per tile pixel (7.9 KB at 405 px, 7.3 KB at 705 px)


def providers_for(device: str) -> list[str]:
    """onnxruntime execution providers for ``auto``/``cpu``/``cuda``."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in have:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device.startswith("cuda"):
        raise N3Error("--device cuda: this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    return ["CPUExecutionProvider"]


class OnnxRunner:
    """A :class:`~n3cli.runtime.runner.Runner` for an exported ``.onnx`` model."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: no such model file")
        opts = ort.SessionOptions()
        # subnormal weights and activations run a slow path on Intel CPUs (see checkpoint.flush_subnormals)
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers_for(device))
        except N3Error:
            raise
        except Exception as e:  # onnxruntime raises its own exception types for a bad file
            msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{self.path}: not a loadable ONNX model ({msg})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info, self.graph = read_graph_meta(meta, str(self.path))
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise CheckpointError(f"{self.path}: expected one 4-D image input, found {len(inputs)} input(s)")
        self.input_name = inputs[0].name
        self.min_size = int(self.graph.get("min_size", 1))
        self.size_multiple = int(self.graph.get("size_multiple", 1))
        self.context = int(self.graph.get("context", DEFAULT_OVERLAP))
        fixed = self.graph.get("input_size")
        self.fixed_size = (int(fixed[0]), int(fixed[1])) if fixed else None
        self.dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        self.provider = self.session.get_providers()[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        try:
            (y,) = self.session.run(None, {self.input_name: x.astype(self.dtype, copy=False)})
        except Exception as e:
            if "memory" in str(e).lower() or "alloc" in str(e).lower():
                raise TileMemoryError(str(e)) from None
            raise
        return y.astype(np.float32, copy=False)

    def auto_tile(self, overlap: int) -> int:
        # the CUDA provider's free memory is not exposed; the CPU budget is a safe choice on both
        return cpu_tile(overlap, BYTES_PER_PIXEL)

    def tiles_per_forward(self, tile: int, overlap: int) -> int:
        return 1  # the exported graphs take one image

    def describe(self) -> str:
        return f"onnxruntime {self.provider.replace('ExecutionProvider', '').lower()}"
