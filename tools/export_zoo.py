"""Export every shipped model to ONNX beside it and record the files in weights/manifest.json.

    python tools/export_zoo.py            # all shipped models
    python tools/export_zoo.py n3net-color

Run after a shipped checkpoint changes: the ONNX copy names its source's sha256 and a test
checks that they still match.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from n3cli.store import zoo
from n3cli.store.checkpoint import read_info
from n3cli.store.onnx_export import export_onnx


def main(names: list[str]) -> None:
    man_path = zoo.weights_dir() / "manifest.json"
    man = json.loads(man_path.read_text())
    for m in man["models"]:
        if names and m["name"] not in names:
            continue
        src = zoo.weights_dir() / m["file"]
        if read_info(src).task not in ("denoise", "sr", "raw"):
            continue  # match networks run on point sets, not images
        dst = src.with_suffix(".onnx")
        rep = export_onnx(src, dst)
        m["onnx"], m["onnx_sha256"] = dst.name, zoo.sha256(dst)
        print(f"{m['name']}: {dst} {rep['bytes'] / 1e6:.1f} MB, max |ort - torch| = {rep['max_abs_err']:.2e}")
    man_path.write_text(json.dumps(man, indent=2) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(sys.argv[1:])
