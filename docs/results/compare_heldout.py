"""Compare two `hifacegan eval --pipeline` runs on the faces they share (e.g. 128 px weights alone against the
same weights with a 256 px size installed, on the portraits the 256 px weights were not trained on).

    .venv/bin/python docs/results/compare_heldout.py A/per_image.json B/per_image.json --label-a "128 px" \
        --label-b "128 + 256 px" --method hifacegan-lite-fidelity > comparison.md

Prints a Markdown table: mean PSNR, SSIM, FED, NIQE and median detail kept of each run's method over the shared
faces, the degraded input and classical rows of run A for reference, and how many faces each network took.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

KEYS = (("psnr", "PSNR ↑", np.mean), ("ssim", "SSIM ↑", np.mean), ("fed", "FED ↓", np.mean))
KEYS += (("niqe", "NIQE ↓", np.mean), ("detail_kept", "detail kept (median) ↑", np.median))


def _rows(report: dict, names: set[str], method: str) -> dict[str, float]:
    images = [i for i in report["images"] if i["name"] in names]
    out = {}
    for key, _, reduce in KEYS:
        values = [i["methods"][method][key] for i in images]
        values = [v for v in values if v is not None and math.isfinite(v)]
        out[key] = float(reduce(values)) if values else float("nan")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--method", required=True)
    args = ap.parse_args()
    a, b = (json.loads(p.read_text(encoding="utf-8")) for p in (args.a, args.b))
    names = {i["name"] for i in a["images"]} & {i["name"] for i in b["images"]}
    lines = [
        f"{len(names)} faces in both runs (task {a['task']}, long side {a['size']} px, seed {a['seed']}).",
        "",
        "| run | " + " | ".join(h for _, h, _ in KEYS) + " | networks used |",
        "|---|" + "---:|" * len(KEYS) + "---|",
    ]
    rows = [
        ("degraded input", _rows(a, names, "degraded input"), ""),
        ("classical (NLM + bicubic)", _rows(a, names, "classical (NLM + bicubic)"), ""),
    ]
    for label, report in ((args.label_a, a), (args.label_b, b)):
        used = Counter(
            (i["paths"].get(args.method) or {}).get("weights", "not found")
            for i in report["images"]
            if i["name"] in names
        )
        rows.append(
            (label, _rows(report, names, args.method), ", ".join(f"{k} {v}" for k, v in used.items()))
        )
    for label, values, used in rows:
        cells = " | ".join(f"{values[k]:.3f}" if k != "psnr" else f"{values[k]:.2f}" for k, _, _ in KEYS)
        lines.append(f"| {label} | {cells} | {used} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
