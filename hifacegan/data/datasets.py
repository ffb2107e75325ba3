"""Datasets of (degraded, clean) face pairs for training and evaluation.

Two sources:

- :class:`FaceDegradationDataset`: a folder of clean aligned faces of any size, degraded on the fly at the
  model's size with one of the paper's tasks (the release's training recipe: a new degradation every epoch).
- :class:`PairedFolderDataset`: pre-made LQ and GT folders matched by file name (the paper's test protocol,
  or inputs made once with ``hifacegan degrade``).

Both return ``{"lq": (3, H, W) float in [0, 1], "gt": same, "name": str}`` and never stop an epoch for a bad
file: unreadable files are replaced by the next readable one and counted (:attr:`counts`), odd formats
(grayscale, RGBA, CMYK, palette, 16-bit) are converted to 8-bit RGB and counted.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from hifacegan.data.files import ImageReadError, image_key, list_images, read_rgb8
from hifacegan.degradations import degrade, fit_to_size, parse_task_mix, rng_for

# Per-file status codes, kept in memory shared with DataLoader workers.
_UNKNOWN, _OK, _CONVERTED, _UNREADABLE = 0, 1, 2, 3


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


def zoom_out(image: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Shrink a tight face crop by ``scale`` into a frame of the same size, mirrored outwards at its edges.

    Tight crops (UTKFace: forehead to chin) teach a network faces at one scale only; photos framed more loosely
    (CelebA, hair and background) then show it faces smaller than any it saw. The shrunken face sits at a random
    offset within the frame; the border mirrors the crop (no hard edge for the network to learn), and the clean
    target is the same framed image, so the loss covers the border too.
    """
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    height, width = image.shape[:2]
    inner_h, inner_w = max(1, round(height * scale)), max(1, round(width * scale))
    if inner_h >= height and inner_w >= width:
        return image
    small = cv2.resize(image, (inner_w, inner_h), interpolation=cv2.INTER_AREA)
    room_h, room_w = height - inner_h, width - inner_w
    top, left = int(rng.integers(0, room_h + 1)), int(rng.integers(0, room_w + 1))
    framed = cv2.copyMakeBorder(small, top, room_h - top, left, room_w - left, cv2.BORDER_REFLECT_101)
    return np.ascontiguousarray(framed)


def check_zoom_out(probability: float, min_scale: float) -> None:
    """The zoom-out settings' bounds, checked once for the dataset and for a training config alike."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"zoom_out_probability must be in [0, 1], got {probability}")
    if not 0.0 < min_scale <= 1.0:
        raise ValueError(f"zoom_out_min_scale must be in (0, 1], got {min_scale}")


def check_small_faces(probability: float, min_side: int, size: int | None = None) -> None:
    """The small-face settings' bounds, checked once for the dataset and for a training config alike."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"small_face_probability must be in [0, 1], got {probability}")
    if min_side < 16 or (size is not None and probability > 0 and min_side >= size):
        raise ValueError(
            f"small_face_min_side must be at least 16 and under the training size, got {min_side}"
        )


def degrade_small(clean: np.ndarray, task: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """Degrade ``clean`` (a square face) as a face ``side`` px wide in a photo, then enlarge it back to its size.

    The pipeline cuts a face smaller than the network's size from the photo, degradation and all, and enlarges it
    (hifacegan.face.alignment): a 50 px web face reaches the 128 px network with its JPEG blocks and blur enlarged
    2.5x. A network trained only on faces degraded at its own size met such faces rarely: fine-tuned on the web
    task at 128 px it gained 0.6 dB on faces-val at that size and lost 0.17 dB through the pipeline on faces of
    about 50 px (docs/training/README.md).
    """
    return fit_to_size(degrade(fit_to_size(clean, side), task, rng=rng), clean.shape[0])


def _check_size(size: int | None, allow_none: bool) -> int | None:
    if size is None and allow_none:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(
            f"size must be an integer of at least 8 pixels (the model's input side), got {size!r}"
        )
    return int(size)


class _SkippingFolderDataset(Dataset):
    """Shared machinery: per-file status shared with workers, bad-file replacement, counts.

    OpenCV's thread count is deliberately left alone: ``cv2.setNumThreads`` inside a forked DataLoader worker
    deadlocks once the parent has used OpenCV's pthreads pool (seen with OpenCV 5.0 here).
    """

    def __init__(self, length: int) -> None:
        # Shared memory, inherited by DataLoader workers: a file found unreadable by one worker is skipped by all,
        # and the main process can report what the workers found.
        self._status = multiprocessing.RawArray("b", length)
        self._epoch = multiprocessing.RawValue("q", -1)
        self._draws = np.zeros(length, dtype=np.int64)
        self.seed = 0

    def __len__(self) -> int:
        return len(self._status)

    @property
    def counts(self) -> dict[str, int]:
        """Files found so far (by any worker) that were ``converted`` to 8-bit RGB or ``skipped`` as unreadable."""
        status = np.frombuffer(self._status, dtype=np.int8)
        return {"converted": int((status == _CONVERTED).sum()), "skipped": int((status == _UNREADABLE).sum())}

    def skipped_names(self) -> list[str]:
        """Names of the files skipped as unreadable so far (fix or delete them)."""
        status = np.frombuffer(self._status, dtype=np.int8)
        return [self._name(i) for i in np.flatnonzero(status == _UNREADABLE)]

    def set_epoch(self, epoch: int) -> None:
        """Make training samples a pure function of ``(seed, epoch, index)``; call at the start of each epoch.

        Stored in shared memory, so persistent DataLoader workers see it too.
        """
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self._epoch.value = int(epoch)

    def _training_rng(self, index: int) -> np.random.Generator:
        """Fresh randomness for sample ``index``: see :class:`FaceDegradationDataset` for the guarantees."""
        if self._epoch.value >= 0:
            words = [self.seed, 1, int(self._epoch.value), index]
        else:
            draw = int(self._draws[index])
            self._draws[index] += 1
            info = get_worker_info()
            worker_seed = int(info.seed) if info is not None else 0
            words = [self.seed, 2, index, draw, worker_seed & 0xFFFFFFFF, worker_seed >> 32]
        return np.random.default_rng(np.random.SeedSequence(words))

    def _name(self, index: int) -> str:
        raise NotImplementedError

    def _load(self, index: int) -> tuple[tuple[np.ndarray, ...], bool]:
        """The images of sample ``index`` and whether any needed converting; raises ImageReadError."""
        raise NotImplementedError

    def _first_readable(self, index: int) -> tuple[int, tuple[np.ndarray, ...]]:
        """Load ``index``, or the next readable file after it (wrapping), recording what was found."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        for step in range(len(self)):
            candidate = (index + step) % len(self)
            if self._status[candidate] == _UNREADABLE:
                continue
            try:
                images, converted = self._load(candidate)
            except ImageReadError:
                self._status[candidate] = _UNREADABLE
                continue
            self._status[candidate] = _CONVERTED if converted else _OK
            return candidate, images
        raise RuntimeError(
            f"none of the {len(self)} files could be read as images (first: {self._name(0)}); "
            "check the folder holds image files that open in an image viewer"
        )


class FaceDegradationDataset(_SkippingFolderDataset):
    """(degraded, clean) pairs made on the fly from a folder of clean aligned faces.

    Each clean face is centre-cropped to a square and resized to ``size`` (area averaging when shrinking,
    bicubic when enlarging); in training mode it is flipped horizontally with probability 1/2 and, with probability
    ``zoom_out_probability``, shrunk into a mirrored frame (:func:`zoom_out`, scale uniform in
    ``[zoom_out_min_scale, 1]``); then ``task`` degrades it at that size (recipes scale with the size, see
    :mod:`hifacegan.degradations`) or, with probability ``small_face_probability``, at a smaller one
    (:func:`degrade_small`).

    Randomness (never the global NumPy/torch state):

    - ``train=False`` (validation): every file's pair is fixed by ``seed`` and the file's name, and is the same
      as ``hifacegan degrade --seed SEED --size SIZE`` writes for it.
    - ``train=True`` after :meth:`set_epoch`: sample ``i`` of epoch ``e`` depends only on ``(seed, e, i)``,
      the same with any number of DataLoader workers, persistent or not.
    - ``train=True`` without ``set_epoch``: still different for every worker and every epoch, drawn from the
      per-epoch seeds DataLoader gives its workers (reproducible under ``torch.manual_seed``) and a per-process
      count of how often each sample was drawn.

    Args:
        root: folder of clean aligned faces (searched recursively; PNG, JPEG, BMP, WebP, TIFF).
        size: the model's input side in pixels.
        task: degradation task name (see ``hifacegan.degradations.list_tasks()``), or a weighted mix of them
            such as ``"full:1,web:1"`` (one task drawn per sample; see ``parse_task_mix``).
        train: training mode (fresh degradations, flips) or validation mode (fixed pairs, no flips).
        seed: base seed of all randomness.
        flip: random horizontal flips in training mode.
        limit: use only the first ``limit`` files (sorted by path): quick runs and fixed subsets.
        zoom_out_probability: chance (training mode only) that a face is shrunk into a mirrored frame, so a
            network trained on tight crops also renovates faces framed loosely. 0 draws nothing extra from
            the sample's randomness, so samples are the same as without the option.
        zoom_out_min_scale: smallest shrink factor, in (0, 1].
        clean_probability: chance (training mode only) that the input is the clean face itself, so the network
            learns to leave sharp faces alone. 0 draws nothing extra.
        small_face_probability: chance (training mode only) that a degraded face is degraded as a small face of a
            photo is: at a side uniform in ``[small_face_min_side, size)``, then enlarged to ``size`` as the
            pipeline enlarges such a face for the network. 0 draws nothing extra.
        small_face_min_side: the smallest such side in pixels.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        size: int,
        task: str = "full",
        train: bool = True,
        seed: int = 0,
        flip: bool = True,
        limit: int | None = None,
        zoom_out_probability: float = 0.0,
        zoom_out_min_scale: float = 0.6,
        clean_probability: float = 0.0,
        small_face_probability: float = 0.0,
        small_face_min_side: int = 40,
    ) -> None:
        check_zoom_out(zoom_out_probability, zoom_out_min_scale)
        check_small_faces(small_face_probability, small_face_min_side, size)
        self.small_face_probability = float(small_face_probability)
        self.small_face_min_side = int(small_face_min_side)
        if not 0.0 <= clean_probability < 1.0:
            raise ValueError(f"clean_probability must be in [0, 1), got {clean_probability}")
        self.clean_probability = float(clean_probability)
        self.zoom_out_probability = float(zoom_out_probability)
        self.zoom_out_min_scale = float(zoom_out_min_scale)
        self.task_mix = parse_task_mix(task)
        self.task = str(self.task_mix)
        self.size = _check_size(size, allow_none=False)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.train = bool(train)
        self.flip = bool(flip)
        self.root = Path(root).expanduser()
        files = list_images(self.root, what="face folder")
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be at least 1, got {limit}")
            files = files[:limit]
        self.files = files
        self.names = [image_key(path, self.root) for path in files]
        super().__init__(len(files))
        self.seed = int(seed)

    def _name(self, index: int) -> str:
        return self.names[index]

    def _load(self, index: int) -> tuple[tuple[np.ndarray, ...], bool]:
        image, converted = read_rgb8(self.files[index])
        return (image,), converted

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        found, (image,) = self._first_readable(index)
        name = self.names[found]
        rng = self._training_rng(index) if self.train else rng_for(self.seed, name)
        clean = fit_to_size(image, self.size)
        if self.train and self.flip and rng.random() < 0.5:
            clean = np.ascontiguousarray(clean[:, ::-1])
        if self.train and self.zoom_out_probability > 0 and rng.random() < self.zoom_out_probability:
            clean = zoom_out(clean, rng.uniform(self.zoom_out_min_scale, 1.0), rng)
        if self.train and self.clean_probability > 0 and rng.random() < self.clean_probability:
            degraded = clean
        elif self.train and self.small_face_probability > 0 and rng.random() < self.small_face_probability:
            side = int(rng.integers(self.small_face_min_side, self.size))
            degraded = degrade_small(clean, self.task_mix.choose(rng), side, rng)
        else:
            degraded = degrade(clean, self.task_mix.choose(rng), rng=rng)
        return {"lq": _to_tensor(degraded), "gt": _to_tensor(clean), "name": name}

    def __repr__(self) -> str:
        mode = "train" if self.train else "val"
        return f"FaceDegradationDataset({str(self.root)!r}, size={self.size}, task={self.task!r}, {mode}, n={len(self)})"


class PairedFolderDataset(_SkippingFolderDataset):
    """Pre-made (degraded, clean) pairs: files in ``lq_root`` and ``gt_root`` matched by relative path and stem.

    ``lq/sub/0001.png`` pairs with ``gt/sub/0001.jpg``: extensions may differ, so inputs written by
    ``hifacegan degrade`` (always PNG) pair with JPEG originals. Files with no partner are left out and listed
    in :attr:`unmatched`.

    Sizes: with ``size``, both images are centre-cropped and resized to it. Without, the clean image keeps its
    size and a degraded image of another size is resized to it with bicubic interpolation (the paper brings its
    low-resolution inputs back to full size that way).

    Args:
        lq_root: folder of degraded inputs.
        gt_root: folder of clean targets.
        size: optional common side in pixels.
        flip: random horizontal flip of both images, for fine-tuning on pairs (seeded like
            :class:`FaceDegradationDataset` in training mode: call :meth:`set_epoch` for worker-independence).
        seed: seed of the flips.
        limit: use only the first ``limit`` pairs (sorted by name).
    """

    def __init__(
        self,
        lq_root: str | os.PathLike[str],
        gt_root: str | os.PathLike[str],
        size: int | None = None,
        flip: bool = False,
        seed: int = 0,
        limit: int | None = None,
    ) -> None:
        self.size = _check_size(size, allow_none=True)
        self.flip = bool(flip)
        self.lq_root = Path(lq_root).expanduser()
        self.gt_root = Path(gt_root).expanduser()
        lq = self._by_key(self.lq_root, "degraded (LQ) folder")
        gt = self._by_key(self.gt_root, "clean (GT) folder")
        names = sorted(lq.keys() & gt.keys())
        self.unmatched = {"lq": sorted(lq.keys() - gt.keys()), "gt": sorted(gt.keys() - lq.keys())}
        if not names:
            raise ValueError(
                f"no file in {self.lq_root} has a partner with the same name in {self.gt_root} "
                f"(e.g. LQ {next(iter(sorted(lq)))!r}, GT {next(iter(sorted(gt)))!r}); "
                "pairs are matched by path relative to each folder, without the extension"
            )
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be at least 1, got {limit}")
            names = names[:limit]
        self.names = names
        self.pairs = [(lq[name], gt[name]) for name in names]
        super().__init__(len(names))
        self.seed = int(seed)

    @staticmethod
    def _by_key(root: Path, what: str) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for path in list_images(root, what=what):
            key = image_key(path, root)
            if key in files:
                raise ValueError(
                    f"{what} {root} has two images named {key!r} ({files[key].name} and {path.name}); "
                    "pairs are matched by name, so keep only one"
                )
            files[key] = path
        return files

    def _name(self, index: int) -> str:
        return self.names[index]

    def _load(self, index: int) -> tuple[tuple[np.ndarray, ...], bool]:
        lq_path, gt_path = self.pairs[index]
        lq, lq_converted = read_rgb8(lq_path)
        gt, gt_converted = read_rgb8(gt_path)
        return (lq, gt), lq_converted or gt_converted

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        found, (lq, gt) = self._first_readable(index)
        if self.size is not None:
            lq, gt = fit_to_size(lq, self.size), fit_to_size(gt, self.size)
        elif lq.shape != gt.shape:
            lq = cv2.resize(lq, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_CUBIC)
        if self.flip and self._training_rng(index).random() < 0.5:
            lq, gt = np.ascontiguousarray(lq[:, ::-1]), np.ascontiguousarray(gt[:, ::-1])
        return {"lq": _to_tensor(lq), "gt": _to_tensor(gt), "name": self.names[found]}

    def __repr__(self) -> str:
        return f"PairedFolderDataset({str(self.lq_root)!r}, {str(self.gt_root)!r}, size={self.size}, n={len(self)})"
