"""Training: the engine shared by ground-truth training and FPD distillation, builders, distributed helpers."""

from .engine import RunPaths, Trainer, TrainingError

__all__ = ["Trainer", "TrainingError", "RunPaths"]
