"""Training samples for the damage detector: crops of clean photos, sometimes degraded, sometimes damaged.

What the detector must tell apart is damage from everything else a face photo holds: hair strands, eyelashes,
wrinkles, glasses rims, jewellery, catchlights, film grain, JPEG blocks, blur. So every crop is cut from a clean
portrait at a random scale (a face of 40 px or a cheek of a 1000 px face), given an ordinary degradation or none
(clean, ``web``, ``jpeg``, ``full``, or film grain: all of them negatives, their mask empty), made monochrome or
three times in five, damage drawn over it at a random size with its mask (``hifacegan.degradations._damage``),
and last, over everything, made monochrome or sepia half the time and given a hard contrast a third of the time
(old prints are both: without this the detector read a black-and-white photo's white collars, teeth and face
outlines as damage, and could tell damage by its colour on a grey photo).

Sample ``i`` depends only on ``(seed, i)``: a run that stops and resumes at sample ``i`` sees the same data as one
that never stopped, with any number of loader workers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from hifacegan.data.files import ImageReadError, list_images, read_rgb8
from hifacegan.degradations import damage_with_mask, degrade

# The ordinary looks a crop takes before damage, with their chances: all are negatives for the detector.
LOOKS = (("clean", 0.35), ("web", 0.25), ("grain", 0.2), ("jpeg", 0.1), ("full", 0.1))
DAMAGE_PROBABILITY = 3 / 5
MONOCHROME_PROBABILITY = 1 / 2
CONTRAST_PROBABILITY = 1 / 3
DAMAGE_SCALE = (0.2, 1.2)  # damage drawn as on a face of 100-600 px wide: 0.6-10 px strokes


def film_grain(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Film grain: luminance noise of sigma 3-12 clumped by a slight blur, a little colour in it. Not damage."""
    height, width = image.shape[:2]
    grain = rng.standard_normal((height, width), dtype=np.float32)
    clump = float(rng.uniform(0.0, 0.9))
    if clump > 0.3:
        grain = cv2.GaussianBlur(grain, (0, 0), clump)
        grain /= max(float(grain.std()), 1e-6)
    sigma = float(rng.uniform(3.0, 12.0))
    noise = grain[..., None] * sigma + rng.standard_normal(image.shape, dtype=np.float32) * (sigma * 0.15)
    return np.clip(np.rint(image.astype(np.float32) + noise), 0, 255).astype(np.uint8)


def old_print_look(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Half the time monochrome (grey, or one time in three sepia-toned), a third of the time a hard contrast with
    clipped whites and blacks: how old prints look, damage or not."""
    out = image.astype(np.float32)
    if rng.random() < MONOCHROME_PROBABILITY:
        grey = out @ np.array([0.299, 0.587, 0.114], np.float32)
        tone = np.array([1.0, 1.0, 1.0], np.float32)
        if rng.random() < 1 / 3:
            tone = np.array([1.07, 0.98, 0.82], np.float32) + rng.uniform(-0.03, 0.03, 3).astype(np.float32)
        out = grey[..., None] * tone
    if rng.random() < CONTRAST_PROBABILITY:
        gain = float(rng.uniform(1.2, 2.2))
        out = (out - float(rng.uniform(90, 160))) * gain + 128.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` square cut from ``image`` shown at a random scale (its long side 0.6-1 of its own for small
    images, down to ``size`` / 1.25 for large ones), area-resampled like a photo seen at that size."""
    height, width = image.shape[:2]
    longest = max(height, width)
    low = max(size * 1.25, min(longest, 160))
    shown = math.exp(rng.uniform(math.log(low), math.log(max(low, longest))))
    side = max(8, min(height, width, round(size * longest / shown)))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    crop = image[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=interpolation))


def make_sample(clean: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """(image, mask as bool, the look it took) for one training crop of a clean photo."""
    crop = random_crop(clean, size, rng)
    names, chances = zip(*LOOKS, strict=True)
    look = names[int(rng.choice(len(names), p=np.asarray(chances)))]
    if look == "grain":
        crop = film_grain(crop, rng)
    elif look != "clean":
        crop = degrade(crop, look, rng=rng)
    mask = np.zeros(crop.shape[:2], bool)
    if rng.random() < DAMAGE_PROBABILITY:
        scale = math.exp(rng.uniform(math.log(DAMAGE_SCALE[0]), math.log(DAMAGE_SCALE[1])))
        crop, mask, _ = damage_with_mask(crop, rng, scale=scale)
        look += "+damage"
    # The print's look over everything, damage included, as a scan of an old print shows it.
    return old_print_look(crop, rng), mask, look


class DamageSamples(Dataset):
    """Samples ``start`` .. ``start + count - 1`` of the endless stream drawn from the clean images in ``roots``.

    Each returns ``{"image": (3, size, size) float in [0, 1], "mask": (1, size, size) float 0/1}``.
    """

    def __init__(
        self,
        roots: list[str | os.PathLike[str]],
        size: int = 128,
        seed: int = 0,
        start: int = 0,
        count: int = 1,
    ) -> None:
        self.files: list[Path] = []
        for root in roots:
            self.files += list_images(Path(root).expanduser(), what="clean image folder")
        if not self.files:
            raise ValueError(f"no images in {', '.join(map(str, roots))}")
        self.size, self.seed, self.start, self.count = int(size), int(seed), int(start), int(count)

    def __len__(self) -> int:
        return self.count

    def rng(self, number: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, 7, number]))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        number = self.start + index
        rng = self.rng(number)
        for attempt in range(len(self.files)):
            path = self.files[int(rng.integers(len(self.files)))]
            try:
                clean, _ = read_rgb8(path)
                break
            except ImageReadError:
                if attempt == len(self.files) - 1:
                    raise
        image, mask, _ = make_sample(clean, self.size, rng)
        return {
            "image": torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div_(255.0),
            "mask": torch.from_numpy(mask[None].astype(np.float32)),
        }
