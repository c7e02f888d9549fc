"""Training: the engine shared by ground-truth training and FPD distillation, builders, distributed helpers."""

from .engine import Trainer, TrainingError
from .run_dir import RunPaths

__all__ = ["Trainer", "TrainingError", "RunPaths"]
