"""Build the optimiser and the learning-rate schedule from an :class:`~posedistill.config.ExperimentConfig`
(datasets: :mod:`posedistill.training.datasets`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ExperimentConfig

__all__ = ["build_optimizer", "build_scheduler", "lr_factor", "scheduler_steps_per_iteration"]


def build_optimizer(model: nn.Module, cfg: ExperimentConfig) -> torch.optim.Optimizer:
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.optimizer == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
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
