"""What an exported ONNX file says about itself: the model's config (the checkpoint's, key
``n3cli``) and the facts the runtime needs to feed the graph (key ``n3cli.graph``), validated."""
from __future__ import annotations

import json
from typing import Any

from ..errors import CheckpointError
from .modelinfo import META_KEY, ModelInfo

GRAPH_KEY = "n3cli.graph"


def read_graph_meta(meta: dict[str, str], where: str) -> tuple[ModelInfo, dict[str, Any]]:
    """The model config and graph facts from an exported file's metadata (one-line errors)."""
    if META_KEY not in meta or GRAPH_KEY not in meta:
        raise CheckpointError(f"{where}: ONNX model without n3 metadata (not made by `n3 export`), "
                              "so its inputs and outputs are unknown")
    try:
        info = ModelInfo.from_json(json.loads(meta[META_KEY]), where)
        graph = json.loads(meta[GRAPH_KEY])
    except (json.JSONDecodeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{where}: n3 metadata is not valid JSON ({e})") from None
    if not isinstance(graph, dict):
        raise CheckpointError(f"{where}: {GRAPH_KEY} metadata must be a JSON object")
    for key, lo, hi in (("min_size", 1, 4096), ("size_multiple", 1, 256), ("context", 0, 1024)):
        v = graph.get(key, lo)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise CheckpointError(f"{where}: {GRAPH_KEY} {key} must be a whole number from {lo} to {hi}, got {v!r:.40}")
    fixed = graph.get("input_size")
    if fixed is not None and not (isinstance(fixed, list) and len(fixed) == 2
                                  and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 16384
                                          for v in fixed)):
        raise CheckpointError(f"{where}: {GRAPH_KEY} input_size must be [height, width] in 16..16384, got {fixed!r:.40}")
    return info, graph
