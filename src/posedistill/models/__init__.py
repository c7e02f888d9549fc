"""Hourglass model family for pose estimation (see :mod:`posedistill.models.hourglass`)."""

from .binarized import BinarizedStackedHourglass, BinaryConv2d, BinaryResidual, binarized_hourglass
from .hourglass import DEFAULT_DEPTH, STRIDE, Hourglass, Residual, StackedHourglass
from .registry import (
    ModelSpec,
    build_model,
    get_model_spec,
    list_models,
    resolve_name,
    stacked_hourglass,
    student,
    teacher,
)

__all__ = [
    "DEFAULT_DEPTH", "STRIDE", "Hourglass", "Residual", "StackedHourglass", "ModelSpec", "build_model", "get_model_spec", "list_models",
    "resolve_name", "stacked_hourglass", "student", "teacher",
    "BinarizedStackedHourglass", "BinaryConv2d", "BinaryResidual", "binarized_hourglass",
]
