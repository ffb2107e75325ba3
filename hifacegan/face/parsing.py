"""Face-parsing blend masks, used only when the user has the parsing weights (they cannot be had offline).

With a parser, the paste-back mask follows the face itself (skin, brows, eyes, glasses, ears, nose, mouth, lips)
instead of a feathered rectangle, so hair and background around the face keep their original pixels. Weights are
looked for in the face cache dir under facexlib's file names; nothing is downloaded. Classes are CelebAMask-HQ's
19 labels, which both of facexlib's parsers predict.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from hifacegan.face._cache import cache_dir
from hifacegan.face.blending import feather_mask

log = logging.getLogger(__name__)

#: parser name -> (file name in the cache dir, input normalisation mean, std)
PARSERS = {
    "bisenet": ("parsing_bisenet.pth", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "parsenet": ("parsing_parsenet.pth", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
FACE_CLASSES = tuple(range(1, 14))  # skin .. lower lip; not neck, cloth, hair, hat, background
PARSE_SIZE = 512


def find_parsing_weights(folder: Path | None = None) -> tuple[str, Path] | None:
    """The first parser whose weights file is present, or None."""
    folder = folder or cache_dir()
    for name, (filename, _, _) in PARSERS.items():
        path = folder / filename
        if path.is_file():
            return name, path
    return None


def build_parser_network(name: str) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from facexlib.parsing.bisenet import BiSeNet
        from facexlib.parsing.parsenet import ParseNet
    if name == "bisenet":
        return BiSeNet(num_class=19)
    if name == "parsenet":
        return ParseNet(in_size=PARSE_SIZE, out_size=PARSE_SIZE, parsing_ch=19)
    raise ValueError(f"unknown face parser {name!r}; choose one of {', '.join(PARSERS)}")


class FaceParser:
    """Soft face masks for aligned crops."""

    def __init__(self, name: str, path: Path, device: torch.device | str = "cpu") -> None:
        self.name = name
        self.device = torch.device(device)
        network = build_parser_network(name)
        state = torch.load(path, map_location="cpu", weights_only=True)
        network.load_state_dict(state, strict=True)
        self.network = network.to(self.device).eval()
        _, mean, std = PARSERS[name]
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_cache(cls, device: torch.device | str = "cpu") -> FaceParser | None:
        """A parser when its weights are in the cache dir and load cleanly; None otherwise (rectangle masks)."""
        found = find_parsing_weights()
        if found is None:
            return None
        try:
            return cls(*found, device=device)
        except Exception as exc:  # a foreign or corrupt file must not break renovation
            log.warning("face parser %s unusable (%s): blending with feathered rectangles", found[1], exc)
            return None

    def mask(self, face_rgb: np.ndarray) -> np.ndarray:
        """A (S, S) float32 mask in [0, 1] for an aligned (S, S, 3) float RGB face: face classes, softened."""
        size = face_rgb.shape[0]
        resized = cv2.resize(face_rgb, (PARSE_SIZE, PARSE_SIZE), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1)[None].to(self.device)
        with torch.inference_mode():
            logits = self.network((x - self.mean) / self.std)[0]
        labels = logits.argmax(dim=1)[0].cpu().numpy()
        hard = np.isin(labels, FACE_CLASSES).astype(np.float32)
        soft = cv2.GaussianBlur(hard, (0, 0), sigmaX=PARSE_SIZE / 50.0)
        soft = cv2.resize(soft, (size, size), interpolation=cv2.INTER_AREA)
        return np.clip(soft, 0.0, 1.0) * feather_mask(size)
