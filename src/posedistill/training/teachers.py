"""The FPD teacher seen by the trainer: one interface, three kinds.

Every teacher answers ``heatmaps(epoch, batch)`` with the final-stack heatmaps of the batch's samples (a float32
tensor on the batch's device) or None:

* :class:`NoTeacher` -- ground-truth training: None, the trainer uses the ground-truth loss alone.
* :class:`OnlineTeacher` -- the paper's scheme: the frozen teacher runs on the same augmented batch.
* :class:`UnusedTeacher` -- alpha 0 (the ground-truth control of an FPD run): the teacher term has no weight, so
  the teacher is checked and recorded but never run; the losses are the ground-truth student's.
* :class:`CachedTeacher` -- the heatmaps the same teacher gave these samples in this epoch, precomputed by
  :mod:`posedistill.training.teacher_cache`.
* :class:`~posedistill.training.warped_teacher.WarpedTeacher` -- ``distill.teacher_targets: warped``: the
  teacher's heatmaps of each person's plain crop, computed once, warped into the sample's augmented crop.

:func:`build_teacher` picks the kind from the run's options; the teacher checkpoint is loaded, checked and
viewed as in :mod:`posedistill.training.teacher_model`, which the cache builder uses too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ..config import ExperimentConfig
from ..errors import ConfigError
from .teacher_cache import TeacherCache
from .teacher_model import TeacherView, load_teacher, teacher_view
from .warped_teacher import WarpedTargets, WarpedTeacher

__all__ = ["Teacher", "NoTeacher", "UnusedTeacher", "OnlineTeacher", "CachedTeacher", "build_teacher"]


class Teacher(Protocol):
    """What the trainer asks a teacher."""

    def heatmaps(self, epoch: int, batch: dict[str, Any]) -> torch.Tensor | None:
        """Final-stack teacher heatmaps of ``batch`` (its ``image`` already on the device), or None."""

    def run_fields(self) -> dict[str, str | None]:
        """What the run's ``config.yaml`` records about the teacher (``teacher``, ``teacher_cache``)."""


@dataclass
class NoTeacher:
    def heatmaps(self, epoch: int, batch: dict[str, Any]) -> torch.Tensor | None:
        return None

    def run_fields(self) -> dict[str, str | None]:
        return {"teacher": None}


@dataclass
class UnusedTeacher(NoTeacher):
    """The teacher of an alpha-0 run: recorded in the run files, never run (its term would be multiplied by 0)."""

    path: str | Path = ""

    def run_fields(self) -> dict[str, str | None]:
        return {"teacher": str(self.path)}


@dataclass
class OnlineTeacher:
    """A frozen teacher model run in eval mode under ``torch.inference_mode`` on each batch, as ``view`` says
    (the cache builder's :class:`~posedistill.training.teacher_model.TeacherView`)."""

    model: nn.Module
    path: str | Path
    view: TeacherView

    def heatmaps(self, epoch: int, batch: dict[str, Any]) -> torch.Tensor:
        # clone: a normal tensor (inference tensors cannot enter autograd)
        return self.view(self.model, batch["image"]).clone()

    def run_fields(self) -> dict[str, str | None]:
        return {"teacher": str(self.path)}


@dataclass
class CachedTeacher:
    """Precomputed heatmaps of a :class:`~posedistill.training.teacher_cache.TeacherCache`."""

    cache: TeacherCache
    teacher_path: str | Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def heatmaps(self, epoch: int, batch: dict[str, Any]) -> torch.Tensor:
        return self.cache.heatmaps(epoch, batch["index"]).to(self.device, non_blocking=True)

    def run_fields(self) -> dict[str, str | None]:
        teacher = self.teacher_path if self.teacher_path is not None else self.cache.meta["teacher"]["path"]
        return {"teacher": str(teacher), "teacher_cache": str(self.cache.root)}


def build_teacher(cfg: ExperimentConfig, *, teacher: str | Path | None, cache: str | Path | None, joint_set: str,
                  stride: int, dataset: Any, device: torch.device,
                  memory_format: torch.memory_format = torch.contiguous_format) -> Teacher:
    """The run's teacher: warped (``distill.teacher_targets: warped``; ``cache`` holds the targets), cached
    (``cache`` given; checked against ``cfg``, the training ``dataset`` and, when given, the ``teacher``
    checkpoint), online (``teacher`` only; unused at alpha 0) or none."""
    if cfg.distill.teacher_targets == "warped" and (cache is not None or teacher is not None):
        if cache is None:
            raise ConfigError("distill.teacher_targets 'warped' reads its targets from a directory: give "
                              "--teacher-cache DIR (`posedistill distill` builds it there from --teacher)")
        store = WarpedTargets(cache)
        store.validate(cfg, teacher=teacher, dataset=dataset)
        return WarpedTeacher(store, cfg.data.input_size, cfg.data.input_size // stride, teacher, device)
    if cache is not None:
        opened = TeacherCache(cache)
        opened.validate(cfg, teacher=teacher, dataset=dataset)
        return CachedTeacher(opened, teacher, device)
    if teacher is not None:
        model = load_teacher(teacher, cfg, joint_set=joint_set, stride=stride).module
        if cfg.distill.alpha == 0:  # checked above, but its heatmaps would only be multiplied by 0
            return UnusedTeacher(teacher)
        return OnlineTeacher(model.to(device, memory_format=memory_format), teacher,
                             teacher_view(cfg, joint_set=joint_set, stride=stride))
    return NoTeacher()
