"""Model cards: everything needed to use a weights file correctly, stored inside the file.

A card travels in the safetensors metadata, so a weights file can never be separated from the facts that make its
output right: which network, how its output maps to an image, and which face alignment it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

#: FFHQ 5-point template at 512 px (left eye, right eye, nose, left and right mouth corner), as facexlib uses it.
#: The paper's and the released weights expect faces aligned to it.
FFHQ_TEMPLATE_512: list[list[float]] = [
    [192.98138, 239.94708],
    [318.90277, 240.19360],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
]

#: How the network's raw ``tanh`` output becomes an image in [0, 1].
OUTPUT_CONVENTIONS = {
    "symmetric": "image = (y + 1) / 2, the usual GAN convention; our own weights",
    "unit": "image = clip(y, 0, 1): the released checkpoints were trained to use tanh output as a [0, 1] image",
}

CARD_METADATA_KEY = "hifacegan.card"
FORMAT_VERSION = 1


def scale_template(template: list[list[float]], from_size: int, to_size: int) -> list[list[float]]:
    s = to_size / from_size
    return [[x * s, y * s] for x, y in template]


@dataclass
class ModelCard:
    """Facts about one weights file. ``sha256`` is the digest of its tensors (see ``format.tensor_sha256``)."""

    name: str
    config: str
    size: int
    output: str = "symmetric"
    template: list[list[float]] = field(default_factory=lambda: scale_template(FFHQ_TEMPLATE_512, 512, 512))
    config_overrides: dict[str, Any] = field(default_factory=dict)
    role: str | None = None  # "fidelity" (L1-tuned) or "perceptual": the two ends of the fidelity slider
    partner: str | None = None  # the weights at the other end of the slider, fine-tuned from / into these
    description: str = ""
    license: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.output not in OUTPUT_CONVENTIONS:
            raise ValueError(
                f"unknown output convention {self.output!r}; expected one of {', '.join(OUTPUT_CONVENTIONS)}"
            )
        if len(self.template) != 5 or any(len(p) != 2 for p in self.template):
            raise ValueError("a model card's template must hold 5 [x, y] points")

    def to_image(self, raw: torch.Tensor) -> torch.Tensor:
        """Map the generator's raw output to an image in [0, 1] by this weights' convention."""
        if self.output == "unit":
            return raw.clamp(0.0, 1.0)
        return ((raw + 1.0) * 0.5).clamp(0.0, 1.0)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        data = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_markdown(self) -> str:
        """A human-readable model card (YAML front matter, then prose), written beside exported weights."""
        lines = [
            "---",
            f"name: {self.name}",
            f"config: {self.config}",
            f"license: {self.license or 'unspecified'}",
            f"sha256: {self.sha256}",
            "tags: [hifacegan, face-restoration]",
            "---",
            "",
            f"# {self.name}",
            "",
            self.description or "HiFaceGAN weights.",
            "",
            "## Use",
            f"- Network: `build_generator({self.config!r}, **{self.config_overrides})`, input {self.size}x{self.size} "
            "RGB in [0, 1].",
            f"- Output: `{self.output}` ({OUTPUT_CONVENTIONS[self.output]}).",
            f"- Alignment template (5 points at {self.size} px): {json.dumps(self.template)}",
        ]
        if self.role:
            lines.append(f"- Role: {self.role}; fidelity partner: {self.partner or 'none'}.")
        if self.training:
            lines += ["", "## Training", ""]
            lines += [f"- {k}: {v}" for k, v in self.training.items()]
        if self.metrics:
            lines += ["", "## Metrics", ""]
            for key, value in self.metrics.items():
                lines += _metrics_markdown(key, value)
        return "\n".join(lines) + "\n"


_METRIC_COLUMNS = (
    ("psnr", "PSNR ↑", "{:.2f}"),
    ("ssim", "SSIM ↑", "{:.3f}"),
    ("ms_ssim", "MS-SSIM ↑", "{:.3f}"),
    ("fed", "FED ↓", "{:.3f}"),
    ("lle", "LLE ↓", "{:.2f}"),
    ("fid", "FID ↓", "{:.1f}"),
    ("lpips", "LPIPS ↓", "{:.3f}"),
    ("niqe", "NIQE ↓", "{:.2f}"),
    ("faces_missed", "faces missed", "{}"),
    ("n", "n", "{}"),
)


def _metrics_markdown(key: str, value: Any) -> list[str]:
    """``hifacegan eval`` rows (a list of dicts with a ``method``) as a table; anything else as one line."""
    rows = (
        value
        if isinstance(value, list) and all(isinstance(r, dict) and "method" in r for r in value)
        else None
    )
    if not rows:
        return [f"- {key}: {value}"]
    columns = [c for c in _METRIC_COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    lines = [f"{key}:", "", "| method | " + " | ".join(h for _, h, _ in columns) + " |"]
    lines.append("|---|" + "---:|" * len(columns))
    for row in rows:
        cells = ["n/a" if row.get(k) is None else fmt.format(row[k]) for k, _, fmt in columns]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return [*lines, ""]
