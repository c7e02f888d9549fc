"""Labeled and unlabeled samples in one dataset (FPD with unlabeled images)."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

__all__ = ["MixedDataset"]


class MixedDataset(Dataset):
    """Labeled and unlabeled datasets side by side; adds ``labeled`` (1 or 0) to every sample.

    Indexed like :class:`~posedistill.data.PoseDataset`, by ``i`` or ``(epoch, i)``; labeled samples come first.
    """

    def __init__(self, labeled: Dataset, unlabeled: Dataset) -> None:
        self.parts = (labeled, unlabeled)

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = key if isinstance(key, (tuple, list)) else (None, key)
        n = len(self.parts[0])  # type: ignore[arg-type]
        part, j, flag = (self.parts[0], i, 1) if i < n else (self.parts[1], i - n, 0)
        return {**part[j if epoch is None else (epoch, j)], "labeled": flag}

    def set_epoch(self, epoch: int) -> None:
        for p in self.parts:
            p.set_epoch(epoch)  # type: ignore[attr-defined]
