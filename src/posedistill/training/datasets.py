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
from ..inference.finder import Finder
from ..models.meta import ModelMeta

__all__ = ["TrainingData", "read_training_data", "pose_dataset"]


def pose_dataset(records: list[PersonRecord], cfg: ExperimentConfig, *, train: bool, meta: ModelMeta) -> PoseDataset:
    """A :class:`PoseDataset` of ``records`` made for the model of ``meta`` (input size, stride, sigma,
    normalisation), with the experiment's sigma schedule, augmentation (training only) and seed."""
    d = cfg.data
    sigma_schedule = (d.sigma_start, d.sigma_epochs) if (train and d.sigma_start > 0) else None
    return PoseDataset(records, meta=meta, train=train, augment=d.augment if train else None, seed=cfg.seed,
                       skip_bad=d.skip_bad, sigma_schedule=sigma_schedule)


@dataclass
class TrainingData:
    """The records of an experiment's training and validation splits and their joint set."""

    cfg: ExperimentConfig
    joint_set: str
    train_records: list[PersonRecord]
    val_records: list[PersonRecord]

    def meta(self, stride: int) -> ModelMeta:
        """The pixel record of the experiment's model (its input size and sigma, this data's joint set) whose
        heatmaps have ``stride``: the record the trainer writes into its checkpoints."""
        d = self.cfg.data
        return ModelMeta.for_pixels(self.joint_set, d.input_size, stride=stride, sigma=d.sigma,
                                    arch=self.cfg.model.name)

    def train_set(self, *, meta: ModelMeta, unlabeled: str | Path | None = None) -> Dataset:
        """The training dataset; with ``unlabeled`` (a folder), labeled samples then the unlabeled images, each
        cropped on the person the shipped person finder finds in it (``distill.unlabeled_box: finder``, padded by
        the model's box padding like a labeled box) or whole (``whole``)."""
        labeled = pose_dataset(self.train_records, self.cfg, train=True, meta=meta)
        if unlabeled is None:
            return labeled
        if self.cfg.distill.unlabeled_box == "finder":
            finder = Finder.shipped(threads=1)
            if finder is None:
                raise ConfigError("distill.unlabeled_box 'finder' needs the shipped person finder, and none is "
                                  "installed; set it to 'whole'")
            records = unlabeled_records(unlabeled, self.joint_set, padding=meta.box_padding,
                                        person_box=lambda image: finder(image)[0][1])
        else:
            records = unlabeled_records(unlabeled, self.joint_set)
        extra = pose_dataset(records, self.cfg, train=True, meta=meta)
        return MixedDataset(labeled, extra)

    def val_set(self, *, meta: ModelMeta) -> PoseDataset | None:
        """The validation dataset (no augmentation), None without validation records."""
        if not self.val_records:
            return None
        return pose_dataset(self.val_records, self.cfg, train=False, meta=meta)


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
