"""Stacked Hourglass networks (Newell, Yang, Deng, "Stacked Hourglass Networks for Human Pose Estimation",
ECCV 2016), as used by Fast Pose Distillation (Zhang, Zhu, Ye, "Fast Human Pose Estimation", CVPR 2019).

Layout (input ``N x 3 x H x W``, H and W multiples of 64):

* stem: 7x7 stride-2 conv (C/4), residual to C/2, 2x2 max-pool, residual, residual to C -> ``H/4 x W/4``;
  for C = 256 this is exactly Newell's stem (64, 128, 128, 256).
* S stacks, each: a recursive hourglass of depth 4 (max-pool down, nearest-neighbour up, a residual skip
  branch at every level), ``blocks`` residual units after it, a 1x1 conv-BN-ReLU, and a 1x1 heatmap head
  (intermediate supervision). Between stacks, features and heatmaps are mapped back by 1x1 convs and added
  to the stack's input (re-injection).
* residual unit: pre-activation bottleneck BN-ReLU-conv1x1(C/2)-BN-ReLU-conv3x3(C/2)-BN-ReLU-conv1x1(C); with
  ``depthwise=True`` the 3x3 is depthwise-separable (depthwise 3x3 then pointwise 1x1), the mobile variant.

``forward`` returns the list of the S stacks' heatmaps, ``N x K x H/4 x W/4`` each; the last is the prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor, nn

__all__ = ["Residual", "Hourglass", "StackedHourglass", "LayerFactory", "DEFAULT_DEPTH", "STRIDE"]

LayerFactory = Callable[[int, int], nn.Module]
#: Recursion depth of each hourglass unless a config or checkpoint says otherwise (Newell et al.'s 4: at 256 input
#: the lowest level is 4x4). Checkpoints store ``depth`` only when it differs from this.
DEFAULT_DEPTH = 4
#: Input pixels per heatmap pixel of every Hourglass of the family (the stem's stride-2 conv and 2x2 max-pool).
STRIDE = 4
"""Builds a layer from (in_channels, out_channels): the residual unit or the 1x1 conv of a variant."""


class Residual(nn.Module):
    """Pre-activation bottleneck residual unit of the Hourglass (optionally depthwise-separable)."""

    def __init__(self, in_channels: int, out_channels: int, *, depthwise: bool = False) -> None:
        super().__init__()
        mid = max(out_channels // 2, 1)
        if depthwise:
            conv3: nn.Module = nn.Sequential(
                nn.Conv2d(mid, mid, 3, padding=1, groups=mid), nn.Conv2d(mid, mid, 1)
            )
        else:
            conv3 = nn.Conv2d(mid, mid, 3, padding=1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            conv3,
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1),
        )
        self.skip: nn.Module = (
            nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.skip(x)


def _residuals(channels: int, blocks: int, residual: LayerFactory) -> nn.Sequential:
    return nn.Sequential(*(residual(channels, channels) for _ in range(blocks)))


class Hourglass(nn.Module):
    """One recursive hourglass of the given depth (Newell et al. use depth 4).

    ``residual`` builds each residual unit (default :class:`Residual`, depthwise-separable when asked).
    """

    def __init__(self, depth: int, channels: int, *, blocks: int = 1, depthwise: bool = False,
                 residual: LayerFactory | None = None) -> None:
        super().__init__()
        residual = residual or partial(Residual, depthwise=depthwise)
        self.skip = _residuals(channels, blocks, residual)
        self.down = nn.MaxPool2d(2, 2)
        self.low1 = _residuals(channels, blocks, residual)
        self.low2: nn.Module = (
            Hourglass(depth - 1, channels, blocks=blocks, residual=residual)
            if depth > 1
            else _residuals(channels, blocks, residual)
        )
        self.low3 = _residuals(channels, blocks, residual)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.up(self.low3(self.low2(self.low1(self.down(x)))))


class StackedHourglass(nn.Module):
    """Stacked Hourglass network with intermediate supervision.

    Args:
        stacks: number of hourglass stacks S.
        channels: feature channels C inside the hourglasses.
        num_joints: heatmaps per stack K.
        blocks: residual units per hourglass level (and after each hourglass).
        depth: recursion depth of each hourglass (4: the input must be a multiple of 64 pixels).
        depthwise: use depthwise-separable 3x3 convolutions in the residual units.
        residual: builds the residual units (default :class:`Residual`); variants such as the binarized
            Hourglass pass their own.
        conv1x1: builds the 1x1 feature and feature re-injection convs (default ``nn.Conv2d``). The first 7x7
            conv, the heatmap heads and the heatmap re-injection stay real-valued ``nn.Conv2d`` always.
    """

    def __init__(
        self,
        *,
        stacks: int,
        channels: int,
        num_joints: int,
        blocks: int = 1,
        depth: int = DEFAULT_DEPTH,
        depthwise: bool = False,
        residual: LayerFactory | None = None,
        conv1x1: LayerFactory | None = None,
    ) -> None:
        super().__init__()
        kind = type(self).__name__
        for name, value in (("stacks", stacks), ("channels", channels), ("num_joints", num_joints),
                            ("blocks", blocks), ("depth", depth)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{kind}: {name} must be a positive integer, got {value!r}")
        if channels < 4 or channels % 4:
            raise ValueError(f"{kind}: channels must be a multiple of 4, got {channels}")
        residual = residual or partial(Residual, depthwise=depthwise)
        conv1x1 = conv1x1 or partial(nn.Conv2d, kernel_size=1)
        self.stacks, self.channels, self.num_joints = stacks, channels, num_joints
        self.blocks, self.depth, self.depthwise = blocks, depth, depthwise
        c = channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, c // 4, 7, stride=2, padding=3),
            nn.BatchNorm2d(c // 4),
            nn.ReLU(inplace=True),
            residual(c // 4, c // 2),
            nn.MaxPool2d(2, 2),
            residual(c // 2, c // 2),
            residual(c // 2, c),
        )
        self.hourglasses = nn.ModuleList(
            Hourglass(depth, c, blocks=blocks, residual=residual) for _ in range(stacks)
        )
        self.features = nn.ModuleList(
            nn.Sequential(
                _residuals(c, blocks, residual),
                conv1x1(c, c),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
            )
            for _ in range(stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(c, num_joints, 1) for _ in range(stacks))
        self.remap_features = nn.ModuleList(conv1x1(c, c) for _ in range(stacks - 1))
        self.remap_heatmaps = nn.ModuleList(nn.Conv2d(num_joints, c, 1) for _ in range(stacks - 1))

    @property
    def stride(self) -> int:
        """Input pixels per heatmap pixel (:data:`STRIDE`)."""
        return STRIDE

    @property
    def min_input_multiple(self) -> int:
        """Input height and width must be multiples of this (4 * 2**depth)."""
        return 4 * 2**self.depth

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"StackedHourglass expects N x 3 x H x W input, got {tuple(x.shape)}")
        m = self.min_input_multiple
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(
                f"StackedHourglass of depth {self.depth} needs H and W multiples of {m}, got {tuple(x.shape[-2:])}"
            )
        x = self.stem(x)
        outputs: list[Tensor] = []
        for i in range(self.stacks):
            y = self.features[i](self.hourglasses[i](x))
            heatmaps = self.heads[i](y)
            outputs.append(heatmaps)
            if i < self.stacks - 1:
                x = x + self.remap_features[i](y) + self.remap_heatmaps[i](heatmaps)
        return outputs
