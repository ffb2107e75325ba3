"""A shuffling sampler whose position can be saved and restored, so ``--resume`` continues mid-epoch exactly."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Each epoch a fresh permutation from ``(seed, epoch)``, split across ranks; starts ``start`` samples in.

    Every rank draws the same permutation and keeps every ``world_size``-th index from its own rank on, so ranks
    see disjoint samples (the tail that does not divide evenly is dropped, as ``DistributedSampler`` does with
    ``drop_last``).
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1, seed: int = 0) -> None:
        if length < world_size:
            raise ValueError(f"{length} samples cannot be shared among {world_size} processes")
        self.length, self.rank, self.world_size, self.seed = length, rank, world_size, seed
        self.per_rank = length // world_size
        self.epoch = 0
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Next iteration yields epoch ``epoch``'s samples for this rank from the ``start``-th on."""
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.length, generator=generator)[: self.per_rank * self.world_size]
        mine = order[self.rank :: self.world_size]
        return iter(mine[self.start :].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.start
