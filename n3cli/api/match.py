"""`n3 match` for Python users: SIFT matches between two photos scored by a match network, the
relative pose, written as JSON (and a drawing) under the rules of every output."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import N3Error
from .loading import load_matcher

VIZ_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def match_files(image_a: str | os.PathLike, image_b: str | os.PathLike, output: str | os.PathLike | None = None,
                viz: str | os.PathLike | None = None, intrinsics: str | os.PathLike | None = None,
                focal: float | None = None, max_matches: int = 2000, model: str | os.PathLike | None = None,
                knn: bool | None = None, overwrite: bool = False) -> dict[str, Any]:
    """The whole `n3 match`: returns the result (see docs/usage.md) plus ``"warning"`` (a note on
    the kNN choice, or None), and writes it to ``output`` (JSON) and ``viz`` (a drawing) when given.
    Outputs are checked before any work: never an input, an existing file only with ``overwrite``.
    ``model`` ``"none"``: robust estimation alone."""
    from ..io.atomic import atomic_write
    from ..match.pipeline import draw_matches, match_images, read_intrinsics

    if viz and Path(viz).suffix.lower() not in VIZ_EXTS:
        raise N3Error(f"{viz}: --viz writes an image: use one of {', '.join(sorted(VIZ_EXTS))}")
    for out in [o for o in (output, viz) if o]:
        if Path(out).exists() and not overwrite:
            raise N3Error(f"{out} exists (use --overwrite to replace it)")
        if Path(out).resolve() in (Path(image_a).resolve(), Path(image_b).resolve()):
            raise N3Error(f"{out}: output would overwrite an input")
    K = read_intrinsics(intrinsics) if intrinsics else None
    net = name = scorer = warning = None
    if model is not None and str(model).lower() == "none":
        if knn:
            raise N3Error("--knn needs a match network (not --model none)")
    else:
        net, name, scorer, warning = load_matcher(model, knn)
    res = match_images(image_a, image_b, net, name, K, focal, max_matches, knn=scorer)
    if output:
        atomic_write(output, lambda tmp: Path(tmp).write_text(json.dumps(res)))
    if viz:
        draw_matches(res, viz)
    return {**res, "warning": warning}
