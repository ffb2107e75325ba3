"""metrics.json rows and the Markdown table (the layout of the paper's Table 1)."""

from __future__ import annotations

import math
from collections.abc import Sequence

ROW_KEYS = (
    "method",
    "psnr",
    "ssim",
    "ms_ssim",
    "fed",
    "lle",
    "fid",
    "lpips",
    "niqe",
    "detail_kept",
    "faces_missed",
    "n",
)
#: Columns a table shows only when some row has them (``detail_kept``: ``hifacegan eval --pipeline`` alone).
_OPTIONAL = frozenset({"detail_kept"})

# (key, header, arrow, format): groups as the paper's Table 1: statistical | semantic | perceptual.
_COLUMNS = (
    ("psnr", "PSNR", "↑", "{:.2f}"),
    ("ssim", "SSIM", "↑", "{:.3f}"),
    ("ms_ssim", "MS-SSIM", "↑", "{:.3f}"),
    ("fed", "FED", "↓", "{:.3f}"),
    ("lle", "LLE", "↓", "{:.2f}"),
    ("fid", "FID", "↓", "{:.1f}"),
    ("lpips", "LPIPS", "↓", "{:.3f}"),
    ("niqe", "NIQE", "↓", "{:.2f}"),
    ("detail_kept", "detail kept", "↑", "{:.3f}"),
)


def clean_number(value: float | None) -> float | None:
    """JSON-safe: None for a missing or non-finite value, a plain float otherwise."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def make_row(method: str, n: int, faces_missed: int | None, **metrics: float | None) -> dict:
    unknown = set(metrics) - set(ROW_KEYS)
    if unknown:
        raise ValueError(f"unknown metric keys {sorted(unknown)}")
    row = {key: clean_number(metrics.get(key)) for key in ROW_KEYS[1:-2]}
    return {"method": method, **row, "faces_missed": faces_missed, "n": n}


def markdown_table(rows: Sequence[dict], title: str, notes: Sequence[str] = ()) -> str:
    """A Markdown report: the metric table (n/a where unavailable) and the notes that explain it."""
    columns = [c for c in _COLUMNS if c[0] not in _OPTIONAL or any(r.get(c[0]) is not None for r in rows)]
    header = "| Method | " + " | ".join(f"{h} {a}" for _, h, a, _ in columns) + " | faces missed | n |"
    rule = "|---|" + "---:|" * (len(columns) + 2)
    groups = "Statistical: PSNR, SSIM, MS-SSIM; semantic: FED, LLE; perceptual: FID, LPIPS, NIQE."
    lines = [f"# {title}", "", groups, ""]
    lines += [header, rule]
    for row in rows:
        cells = []
        for key, _, _, fmt in columns:
            value = row.get(key)
            cells.append("n/a" if value is None else fmt.format(value))
        missed = row.get("faces_missed")
        lines.append(
            f"| {row['method']} | "
            + " | ".join(cells)
            + f" | {'n/a' if missed is None else missed} | {row['n']} |"
        )
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"
