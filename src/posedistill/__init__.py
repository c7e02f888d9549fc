"""posedistill: fast single-person 2D human pose estimation by Fast Pose Distillation (FPD).

Zhang, Zhu, Ye, "Fast Human Pose Estimation", CVPR 2019: a large stacked-Hourglass teacher is distilled into a
small Hourglass student, which alone is deployed.

``import posedistill`` loads no torch (the benchmark's ONNX Runtime worker relies on it); ``build_model``,
``list_models`` (:mod:`posedistill.models`), ``Predictor`` (:mod:`posedistill.inference.predictor`) and
``PoseResult`` (:mod:`posedistill.inference.result`) are loaded from their modules on first use::

    import cv2, posedistill
    people = posedistill.Predictor()(cv2.imread("photo.jpg"))   # finds the person, as `posedistill predict` does
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import CheckpointError, ConfigError, DataError, PosedistillError

__version__ = "0.1.0"

_FROM = {"build_model": "posedistill.models", "list_models": "posedistill.models",
         "Predictor": "posedistill.inference.predictor", "PoseResult": "posedistill.inference.result"}

__all__ = ["__version__", "build_model", "list_models", "Predictor", "PoseResult", "PosedistillError", "ConfigError",
           "DataError", "CheckpointError"]


def __getattr__(name: str) -> Any:
    if name in _FROM:
        return getattr(importlib.import_module(_FROM[name]), name)
    raise AttributeError(f"module 'posedistill' has no attribute {name!r}")
