"""Model registry: build any Hourglass of the family by name (timm-style one-line entry point).

Names: ``hg{S}_{C}`` (S stacks in 1, 2, 4, 8; C channels in 32, 64, 128, 256) and ``hg{S}_{C}_dw`` (the
depthwise-separable mobile variant) and ``hg{S}_{C}_bin`` (the binarized Hourglass of Bulat &
Tzimiropoulos, ICCV 2017, see :mod:`posedistill.models.binarized`), plus the paper's pair ``teacher``
(= ``hg8_256``) and ``student`` (= ``hg4_128``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from ..errors import ConfigError
from .binarized import binarized_hourglass
from .hourglass import DEFAULT_DEPTH, StackedHourglass

__all__ = ["ModelSpec", "list_models", "get_model_spec", "build_model", "stacked_hourglass"]

STACK_CHOICES = (1, 2, 4, 8)
CHANNEL_CHOICES = (32, 64, 128, 256)


@dataclass(frozen=True)
class ModelSpec:
    """Architecture hyper-parameters behind a registered name."""

    stacks: int
    channels: int
    depthwise: bool = False
    blocks: int = 1
    binarized: bool = False  # binarized Hourglass (Bulat & Tzimiropoulos, ICCV 2017)

    def to_dict(self) -> dict:
        return asdict(self)


def _family() -> dict[str, ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    for s in STACK_CHOICES:
        for c in CHANNEL_CHOICES:
            specs[f"hg{s}_{c}"] = ModelSpec(s, c)
            specs[f"hg{s}_{c}_dw"] = ModelSpec(s, c, depthwise=True)
    for s in STACK_CHOICES:  # after the real-valued family, so existing names keep their order
        for c in CHANNEL_CHOICES:
            specs[f"hg{s}_{c}_bin"] = ModelSpec(s, c, binarized=True)
    return specs


_REGISTRY: dict[str, ModelSpec] = _family()
_ALIASES: dict[str, str] = {"teacher": "hg8_256", "student": "hg4_128"}


def list_models() -> list[str]:
    """All registered model names, aliases first."""
    return [*_ALIASES, *_REGISTRY]


def resolve_name(name: str) -> str:
    """Canonical registry name for ``name`` (aliases resolved); raises ConfigError listing valid names."""
    canonical = _ALIASES.get(name, name)
    if canonical not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    return canonical


def get_model_spec(name: str) -> ModelSpec:
    """Hyper-parameters of a registered model."""
    return _REGISTRY[resolve_name(name)]


def stacked_hourglass(
    *, stacks: int, channels: int, num_joints: int = 14, blocks: int = 1, depthwise: bool = False,
    depth: int = DEFAULT_DEPTH,
) -> StackedHourglass:
    """A stacked Hourglass (Newell et al., ECCV 2016) of any size; see :class:`StackedHourglass`."""
    return StackedHourglass(
        stacks=stacks, channels=channels, num_joints=num_joints, blocks=blocks, depthwise=depthwise, depth=depth
    )


def build_model(name: str, *, num_joints: int = 14, depth: int = DEFAULT_DEPTH) -> nn.Module:
    """Build a registered model by name, e.g. ``build_model("hg4_128", num_joints=14)``.

    ``depth`` is each hourglass's recursion depth. Newell et al. use 4 at 256x256 input, so that the lowest level
    is 4x4; at 128 input depth 3 keeps that 4x4 bottom (with depth 4 it is 2x2, and at 64 input 1x1, where
    BatchNorm sees a handful of values per channel and batch: see docs/experiments.md on teacher outliers).
    """
    spec = get_model_spec(name)
    if spec.binarized:
        if depth != DEFAULT_DEPTH:
            raise ConfigError(f"model {name!r}: the binarized Hourglass has depth {DEFAULT_DEPTH} only, got "
                              f"depth={depth}")
        return binarized_hourglass(stacks=spec.stacks, channels=spec.channels, num_joints=num_joints,
                                   blocks=spec.blocks)
    return stacked_hourglass(
        stacks=spec.stacks, channels=spec.channels, num_joints=num_joints, blocks=spec.blocks,
        depthwise=spec.depthwise, depth=depth,
    )
