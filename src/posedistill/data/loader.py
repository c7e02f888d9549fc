"""DataLoader factory: seeded shuffling, epoch-aware sampling that reaches persistent workers."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from ..errors import ConfigError

__all__ = ["EpochSampler", "build_loader", "seed_worker"]


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys so that augmentation follows the epoch even in persistent workers (which
    never see ``dataset.set_epoch`` calls made in the main process).

    The order is a permutation from ``torch.Generator`` seeded with ``seed + epoch`` (or the order of a wrapped
    :class:`DistributedSampler`). Each ``iter()`` uses the next epoch unless :meth:`set_epoch` was called.
    """

    def __init__(self, num_samples: int, *, shuffle: bool, seed: int = 0, base: DistributedSampler | None = None):
        self.num_samples, self.shuffle, self.seed, self.base = num_samples, shuffle, seed, base
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    @property
    def epoch(self) -> int:
        """The epoch the next iteration will use."""
        return self._epoch

    def __len__(self) -> int:
        return len(self.base) if self.base is not None else self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self._epoch
        self._epoch += 1
        if self.base is not None:
            self.base.set_epoch(epoch)
            order = list(self.base)
        elif self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.num_samples, generator=g).tolist()
        else:
            order = range(self.num_samples)
        return iter([(epoch, i) for i in order])


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a worker from torch's per-worker seed (augmentation itself is seeded per
    sample; this only covers third-party code that uses global generators)."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def build_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    distributed: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over a :class:`~posedistill.data.PoseDataset` (or any dataset taking ``(epoch, i)`` keys).

    Workers are persistent when ``num_workers > 0``. ``loader.sampler`` is an :class:`EpochSampler`: call
    ``loader.sampler.set_epoch(e)`` to resume at epoch ``e`` (otherwise each pass over the loader is the next
    epoch, starting at 0). With ``distributed`` the order comes from a DistributedSampler (needs an initialised
    process group).
    """
    if batch_size < 1 or num_workers < 0:
        raise ConfigError(f"build_loader: batch_size must be >= 1 and num_workers >= 0, got {batch_size}, "
                          f"{num_workers}")
    base = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last) if distributed else None
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed, base=base)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=drop_last,
        persistent_workers=num_workers > 0, worker_init_fn=seed_worker if num_workers > 0 else None,
        pin_memory=pin_memory,
    )
