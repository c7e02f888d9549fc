"""The teacher network of FPD: a teacher checkpoint loaded and checked against the student's config, and how it
views the student's crops. The online teacher (:mod:`posedistill.training.teachers`) and the cache builder
(:mod:`posedistill.training.teacher_cache`) both use these, so a cached heatmap is the online teacher's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ExperimentConfig
from ..errors import CheckpointError, ConfigError
from ..inference.network import predict_heatmaps
from ..models.loading import PoseModel, load_pose_model
from ..models.meta import ModelMeta
from ..skeleton import get_joint_set

__all__ = ["TeacherView", "teacher_view", "check_teacher_fits", "load_teacher"]


@dataclass(frozen=True)
class TeacherView:
    """How the teacher looks at the student's crops: at its own input size (``input_size``; 0 = the crop's), and
    mirrored too (``flip_index`` given: the targets are the mean of both views), its heatmaps resampled to the
    student's ``heatmap_size``."""

    heatmap_size: int
    input_size: int = 0
    flip_index: tuple[int, ...] | None = None

    def __call__(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Final-stack teacher heatmaps (float32) of ``images`` (N x 3 x H x W), under ``torch.inference_mode``."""
        with torch.inference_mode():
            x = images
            if self.input_size and self.input_size != images.shape[-1]:
                x = F.interpolate(images, size=(self.input_size, self.input_size), mode="bilinear",
                                  align_corners=False)
            hm = predict_heatmaps(model, x, flip_index=self.flip_index)
            if hm.shape[-1] != self.heatmap_size:
                hm = F.interpolate(hm, size=(self.heatmap_size, self.heatmap_size), mode="bilinear",
                                   align_corners=False)
        return hm


def teacher_view(cfg: ExperimentConfig, *, joint_set: str, stride: int) -> TeacherView:
    """The :class:`TeacherView` of ``cfg.distill`` (``teacher_flip``, ``teacher_input_size``) for a student whose
    heatmaps have ``stride``."""
    flip = tuple(get_joint_set(joint_set).flip_index) if cfg.distill.teacher_flip else None
    return TeacherView(cfg.data.input_size // stride, cfg.distill.teacher_input_size, flip)


def check_teacher_fits(meta: ModelMeta, cfg: ExperimentConfig, *, joint_set: str, stride: int,
                       where: str | Path) -> None:
    """ConfigError / CheckpointError when a teacher (its :class:`~posedistill.models.meta.ModelMeta`) cannot teach
    a student of ``cfg`` whose heatmaps have ``stride``: another joint set, input size (unless
    ``distill.teacher_input_size`` names the teacher's, whose heatmaps are then resampled to the student's grid)
    or heatmap stride (the two models' heatmaps must have the same shape). Warped targets
    (``distill.teacher_targets: warped``) are made at the teacher's own input size and stride, whatever the
    student's."""
    if meta.joint_set != joint_set:
        raise CheckpointError(f"{where}: teacher is for joint set {meta.joint_set!r}, the data has {joint_set!r}")
    own = cfg.distill.teacher_input_size
    if own or cfg.distill.teacher_targets == "warped":
        if own and meta.input_size != own:
            raise ConfigError(f"{where}: teacher was trained at input {meta.input_size}, the config's "
                              f"distill.teacher_input_size is {own}")
        return
    if meta.input_size != cfg.data.input_size:
        raise ConfigError(f"{where}: teacher was trained at input {meta.input_size}, the student config uses "
                          f"{cfg.data.input_size}; set data.input_size to match, or distill.teacher_input_size "
                          f"to {meta.input_size} to resize the student's crops for it")
    if meta.stride != stride:
        raise ConfigError(f"{where}: teacher heatmaps have stride {meta.stride}, the student's {stride}")


def load_teacher(path: str | Path, cfg: ExperimentConfig, *, joint_set: str, stride: int) -> PoseModel:
    """A teacher checkpoint's model (eval mode, frozen) and its record, checked by :func:`check_teacher_fits`."""
    teacher = load_pose_model(path, backend="torch")
    check_teacher_fits(teacher.meta, cfg, joint_set=joint_set, stride=stride, where=path)
    teacher.module.requires_grad_(False)
    return teacher
