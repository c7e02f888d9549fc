"""The training and validation datasets of an experiment, built in one place.

:class:`~posedistill.training.Trainer` and the teacher cache (:mod:`posedistill.training.teacher_cache`) both call
:func:`read_training_data` and :meth:`TrainingData.train_set`, so the cached teacher heatmaps are those of exactly
the samples the trainer draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ..config import ExperimentConfig
from ..data import MixedDataset, PersonRecord, PoseDataset, unlabeled_records
from ..data.splits import joint_set_for, read_split
from ..errors import ConfigError

__all__ = ["TrainingData", "read_training_data", "pose_dataset"]


def pose_dataset(records: list[PersonRecord], cfg: ExperimentConfig, *, train: bool, joint_set: str,
                 stride: int) -> PoseDataset:
    """A :class:`PoseDataset` of ``records`` with the experiment's input size, sigma (schedule), augmentation
    (training only) and seed; ``stride`` is the model's."""
    d = cfg.data
    sigma_schedule = (d.sigma_start, d.sigma_epochs) if (train and d.sigma_start > 0) else None
    return PoseDataset(records, joint_set=joint_set, input_size=d.input_size, sigma=d.sigma, train=train,
                       augment=d.augment if train else None, seed=cfg.seed, skip_bad=d.skip_bad,
                       sigma_schedule=sigma_schedule, stride=stride)


@dataclass
class TrainingData:
    """The records of an experiment's training and validation splits and their joint set."""

    cfg: ExperimentConfig
    joint_set: str
    train_records: list[PersonRecord]
    val_records: list[PersonRecord]

    def train_set(self, *, stride: int, unlabeled: str | Path | None = None) -> Dataset:
        """The training dataset; with ``unlabeled`` (a folder), labeled samples then the unlabeled images."""
        labeled = pose_dataset(self.train_records, self.cfg, train=True, joint_set=self.joint_set, stride=stride)
        if unlabeled is None:
            return labeled
        extra = pose_dataset(unlabeled_records(unlabeled, self.joint_set), self.cfg, train=True,
                             joint_set=self.joint_set, stride=stride)
        return MixedDataset(labeled, extra)

    def val_set(self, *, stride: int) -> PoseDataset | None:
        """The validation dataset (no augmentation), None without validation records."""
        if not self.val_records:
            return None
        return pose_dataset(self.val_records, self.cfg, train=False, joint_set=self.joint_set, stride=stride)


def read_training_data(cfg: ExperimentConfig, *, validation: bool = True) -> TrainingData:
    """Read the training split (first ``data.limit`` records when set) and, with ``validation``, the
    validation split of ``cfg``; ConfigError for an empty training split."""
    d = cfg.data
    train = read_split(d.dataset, d.root, d.train, skip_bad=d.skip_bad)
    if d.limit:
        train = train[: d.limit]
    if not train:
        raise ConfigError(f"{d.root}: training split {d.train!r} is empty")
    val = read_split(d.dataset, d.root, d.val, skip_bad=d.skip_bad) if (validation and d.val) else []
    return TrainingData(cfg, joint_set_for(d.dataset, train, where=str(d.root)), train, val)
