"""Build datasets, optimiser and schedule from an :class:`~posedistill.config.ExperimentConfig`."""

from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ..config import DataConfig, ExperimentConfig
from ..data import AugmentConfig, PersonRecord, PoseDataset, read_dataset
from ..errors import ConfigError, DataError
from ..skeleton import get_joint_set

__all__ = ["joint_set_for", "read_split", "build_dataset", "unlabeled_records", "build_optimizer",
           "build_scheduler"]

_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_JOINT_SETS = {"lsp": "lsp", "lspet": "lsp", "mpii": "mpii", "coco": "coco"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def joint_set_for(data: DataConfig, records: list[PersonRecord] | None = None) -> str:
    """Joint-set name of a dataset kind (for ``json`` data: the records' own joint set)."""
    if data.dataset in _JOINT_SETS:
        return _JOINT_SETS[data.dataset]
    if records:
        return records[0].joint_set
    raise ConfigError(f"{data.root}: cannot tell the joint set of an empty json dataset")


def read_split(data: DataConfig, split: str) -> list[PersonRecord]:
    """Records of a named split (``train``/``val``/``test``...) or an image-number range ``"a-b"`` (1-based,
    inclusive; LSP and LSPET only)."""
    match = _RANGE.match(split)
    if match:
        if data.dataset not in ("lsp", "lspet"):
            raise ConfigError(f"image-number ranges like {split!r} are for lsp/lspet data, not {data.dataset}")
        first, last = int(match.group(1)), int(match.group(2))
        if not 1 <= first <= last:
            raise ConfigError(f"bad image-number range {split!r}")
        return read_dataset(data.dataset, data.root, indices=range(first - 1, last), skip_bad=data.skip_bad)
    if data.dataset in ("coco", "json") and split in ("all", ""):
        return read_dataset(data.dataset, data.root, skip_bad=data.skip_bad)
    return read_dataset(data.dataset, data.root, split=split, skip_bad=data.skip_bad)


def build_dataset(records: list[PersonRecord], cfg: ExperimentConfig, *, train: bool, joint_set: str) -> PoseDataset:
    d = cfg.data
    augment = AugmentConfig(scale_factor=d.scale_factor, rotation=d.rotation, flip=d.flip,
                            color_jitter=d.color_jitter) if train else None
    sigma_schedule = (d.sigma_start, d.sigma_epochs) if (train and d.sigma_start > 0) else None
    return PoseDataset(records, joint_set=get_joint_set(joint_set), input_size=d.input_size, sigma=d.sigma,
                       train=train, augment=augment, seed=cfg.seed, skip_bad=d.skip_bad,
                       sigma_schedule=sigma_schedule)


def unlabeled_records(directory: str | Path, joint_set: str) -> list[PersonRecord]:
    """Records for a folder of unlabeled images: the whole image as the person box, no visible joints."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: unlabeled image folder not found")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{directory}: no images ({', '.join(IMAGE_SUFFIXES)}) in the unlabeled folder")
    k = get_joint_set(joint_set).num_joints
    records = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DataError(f"{path}: unreadable image")
        h, w = image.shape[:2]
        records.append(PersonRecord(image=path, joints=np.zeros((k, 2)), visible=np.zeros(k),
                                    center=np.array([(w - 1) / 2, (h - 1) / 2]), scale=float(max(w, h)),
                                    joint_set=joint_set, meta={"unlabeled": True}))
    return records


def build_optimizer(model: nn.Module, cfg: ExperimentConfig) -> torch.optim.Optimizer:
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.optimizer == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum)
    return torch.optim.SGD(params, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum)


def lr_factor(cfg: ExperimentConfig, step: int, steps_per_epoch: int) -> float:
    """Learning-rate multiplier after ``step`` optimiser steps: linear warm-up over ``schedule.warmup_epochs``,
    then step decay (``gamma`` at each milestone epoch) or cosine decay to ``min_lr_ratio`` at the last epoch."""
    s = cfg.schedule
    epoch = step / steps_per_epoch
    warm = min(1.0, (epoch + 1.0 / steps_per_epoch) / s.warmup_epochs) if s.warmup_epochs > 0 else 1.0
    if s.kind == "cosine":
        span = max(cfg.train.epochs - s.warmup_epochs, 1e-9)
        t = min(max(epoch - s.warmup_epochs, 0.0) / span, 1.0)
        return warm * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))
    return warm * s.gamma ** sum(epoch >= m for m in s.milestones)


def scheduler_steps_per_iteration(cfg: ExperimentConfig) -> bool:
    """True when the schedule is stepped every iteration (warm-up or cosine); False for the plain per-epoch
    step decay (a ``MultiStepLR``, as in runs made before warm-up existed, so that they resume unchanged)."""
    return cfg.schedule.kind != "step" or cfg.schedule.warmup_epochs > 0


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ExperimentConfig,
                    steps_per_epoch: int = 1) -> torch.optim.lr_scheduler.LRScheduler:
    """The run's schedule. Call ``.step()`` after every optimiser step when
    :func:`scheduler_steps_per_iteration` is True, else once per epoch."""
    if not scheduler_steps_per_iteration(cfg):
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.schedule.milestones),
                                                    gamma=cfg.schedule.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch))
