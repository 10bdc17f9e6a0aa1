"""Maintainer tool: record measured metrics (from `n3 eval --json` outputs) in shipped model files
and refresh weights/manifest.json checksums.

    python tools/set_metrics.py weights/n3net-gray-s25.safetensors set12_s25=eval_set12.json ...
"""
import json
import sys
from pathlib import Path

from n3cli.store.checkpoint import load_model, save_model
from n3cli.store.zoo import sha256, weights_dir


def main() -> None:
    path = Path(sys.argv[1])
    m = load_model(path)
    metrics = m.info.extra.setdefault("metrics", {})
    for arg in sys.argv[2:]:
        key, f = arg.split("=", 1)
        rep = json.loads(Path(f).read_text())
        for r in rep["results"]:
            if rep.get("task") == "real":  # n3 eval real: one result over the pairs
                metrics[key] = {"data": Path(r["data"]).name, "pairs": r["pairs_from"], "psnr": round(r["mean_psnr"], 2),
                                "ssim": round(r["mean_ssim"], 4), "noisy_psnr": round(r["noisy_psnr"], 2)}
                continue
            if "a" in r:  # n3 eval raw: one result per (a, b) level
                metrics[f"{key}_a{r['a']:g}"] = {"data": Path(r["data"]).name, "a": r["a"], "b": r["b"],
                                                 "psnr": round(r["mean_psnr"], 2), "noisy_psnr": round(r["noisy_psnr"], 2)}
                continue
            if "scale" in r:  # n3 eval sr: one result per scale
                metrics[f"{key}_x{r['scale']}"] = {"data": Path(r["data"]).name, "scale": r["scale"],
                                                   "psnr": round(r["mean_psnr"], 2), "ssim": round(r["mean_ssim"], 4),
                                                   "bicubic_psnr": round(r["bicubic_psnr"], 2)}
                continue
            k = key if len(rep["results"]) == 1 else f"{key}_s{r['sigma']:g}"
            metrics[k] = {"data": Path(r["data"]).name, "sigma": r["sigma"], "psnr": round(r["mean_psnr"], 2),
                          "ssim": round(r["mean_ssim"], 4), "estimated_sigma": bool(r.get("sigma_estimated", False))}
    save_model(path, m.net, m.info)
    man = weights_dir() / "manifest.json"
    data = json.loads(man.read_text())
    for e in data["models"]:
        e["sha256"] = sha256(weights_dir() / e["file"])
    man.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
