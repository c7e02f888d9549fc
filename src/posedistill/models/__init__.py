"""Models: the Hourglass family (:mod:`.hourglass`, :mod:`.binarized`, :mod:`.registry`) and the trained-model
artefact: its pixel record (:mod:`.meta`), checkpoints (:mod:`.checkpoint`), the one loader of checkpoints and
ONNX files (:mod:`.loading`) and the package's verified default weights (:mod:`.pretrained`)."""

from .binarized import BinarizedStackedHourglass, BinaryConv2d, BinaryResidual, binarized_hourglass
from .hourglass import DEFAULT_DEPTH, STRIDE, Hourglass, Residual, StackedHourglass
from .registry import (
    ModelSpec,
    build_model,
    get_model_spec,
    list_models,
    resolve_name,
    stacked_hourglass,
)

__all__ = [
    "DEFAULT_DEPTH", "STRIDE", "Hourglass", "Residual", "StackedHourglass", "ModelSpec", "build_model",
    "get_model_spec", "list_models", "resolve_name", "stacked_hourglass",
    "BinarizedStackedHourglass", "BinaryConv2d", "BinaryResidual", "binarized_hourglass",
]
