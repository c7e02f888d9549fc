"""Binarized stacked Hourglass: the binary baseline of the FPD comparisons.

Bulat & Tzimiropoulos, "Binarized Convolutional Landmark Localizers for Human Pose Estimation and Face
Alignment with Limited Resources", ICCV 2017, binarize a stacked Hourglass (Newell et al., ECCV 2016) the
XNOR-Net way (Rastegari et al., "XNOR-Net: ImageNet Classification Using Binary Convolutional Neural
Networks", ECCV 2016):

* :class:`BinaryConv2d` -- weights ``W`` are replaced in the forward pass by ``alpha * sign(W)`` with one real
  scale per output channel, ``alpha_o = mean |W_o|``; gradients reach the real-valued ``W`` through a
  straight-through estimator (STE). Inputs are expected to be binary already (see :class:`BinaryActivation`).
* :class:`BinaryActivation` -- ``sign(x)`` (``sign(0) = +1``, so every value is exactly -1 or +1) with the
  clipped STE ``d sign(x) / dx = 1[|x| <= 1]`` (Hubara et al., NeurIPS 2016).
* :class:`BinaryResidual` -- the paper's hierarchical, parallel and multi-scale residual unit: three
  BN -> sign -> binary 3x3 conv layers of C/2, C/4 and C/4 channels, each fed by the previous one, their outputs
  concatenated to C channels and added to the skip branch (identity, or BN -> sign -> binary 1x1 conv when the
  channel count changes). ``block="bottleneck"`` gives the binarized original bottleneck instead
  (BN -> sign -> bconv1x1(C/2) -> BN -> sign -> bconv3x3(C/2) -> BN -> sign -> bconv1x1(C)), the paper's weaker
  first attempt.

:class:`BinarizedStackedHourglass` has exactly the topology of
:class:`~posedistill.models.hourglass.StackedHourglass` (same stem, recursive hourglasses of depth 4,
intermediate heads and re-injection; same attribute names and ``forward``) with every residual unit and 1x1
feature conv binarized. As in the paper the first layer (the stem's 7x7 conv) and the last layers (the 1x1
heatmap heads, and the 1x1 map that re-injects heatmaps into the next stack, which reads real heatmaps) stay
real-valued.

The binarization here is simulated in floating point (values are exactly +-1 and +-alpha), which is what training
needs; MAC counts from :func:`posedistill.bench.profiling.count_gmacs` therefore count binary MACs like real ones
(see :func:`binary_mac_fraction`). Folding a BN that follows a binary conv into it for inference
(:func:`posedistill.deploy.optimize.fold_batchnorm`) is exact: ``sign`` and ``mean |W|`` commute with a
per-output-channel scale, so the folded layer is again ``alpha' * sign(W')`` with the BN's scale in ``alpha'``.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .hourglass import DEFAULT_DEPTH, StackedHourglass

__all__ = [
    "binary_sign", "BinaryActivation", "BinaryConv2d", "BinaryResidual",
    "BinarizedStackedHourglass", "binarized_hourglass", "binary_mac_fraction",
]

BLOCKS = ("hierarchical", "bottleneck")


class _SignSTE(torch.autograd.Function):
    """``sign`` with ``sign(0) = +1`` forward; clipped straight-through gradient ``g * 1[|x| <= 1]`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def binary_sign(x: Tensor) -> Tensor:
    """Elementwise sign in {-1, +1} with the clipped straight-through estimator as gradient."""
    return _SignSTE.apply(x)


class BinaryActivation(nn.Module):
    """Binarize activations to {-1, +1} (clipped STE gradient)."""

    def forward(self, x: Tensor) -> Tensor:
        return binary_sign(x)


class BinaryConv2d(nn.Conv2d):
    """XNOR-Net convolution: weights binarized as ``alpha_o * sign(W_o)``, ``alpha_o = mean |W_o|`` per output
    channel ``o``. Gradients reach ``W`` through the clipped STE of the sign and through ``alpha``.

    Takes the arguments of :class:`torch.nn.Conv2d`; ``bias`` defaults to False (a BN follows or precedes).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)

    def binary_weight(self) -> Tensor:
        """The weights the forward pass uses: exactly two values, ``+-alpha_o``, per output channel."""
        alpha = self.weight.abs().mean(dim=(1, 2, 3), keepdim=True)
        return alpha * binary_sign(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.binary_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


def _bconv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """BN -> sign -> binary conv (the XNOR-Net layer order)."""
    return nn.Sequential(nn.BatchNorm2d(in_channels), BinaryActivation(),
                         BinaryConv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2))


class BinaryResidual(nn.Module):
    """Binarized residual unit (Bulat & Tzimiropoulos, ICCV 2017).

    Args:
        in_channels, out_channels: channel counts (``out_channels`` a multiple of 4 for the hierarchical block).
        block: ``"hierarchical"`` (the paper's hierarchical, parallel & multi-scale block, default) or
            ``"bottleneck"`` (binarized pre-activation bottleneck of the original Hourglass).
    """

    def __init__(self, in_channels: int, out_channels: int, *, block: str = "hierarchical") -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"BinaryResidual: block must be one of {', '.join(BLOCKS)}, got {block!r}")
        self.block = block
        if block == "hierarchical":
            if out_channels % 4:
                raise ValueError(f"BinaryResidual: out_channels must be a multiple of 4, got {out_channels}")
            half, quarter = out_channels // 2, out_channels // 4
            self.branches = nn.ModuleList([_bconv(in_channels, half, 3), _bconv(half, quarter, 3),
                                           _bconv(quarter, quarter, 3)])
        else:
            mid = max(out_channels // 2, 1)
            self.body = nn.Sequential(_bconv(in_channels, mid, 1), _bconv(mid, mid, 3), _bconv(mid, out_channels, 1))
        self.skip: nn.Module = nn.Identity() if in_channels == out_channels else _bconv(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.block == "bottleneck":
            return self.body(x) + self.skip(x)
        outs, h = [], x
        for branch in self.branches:
            h = branch(h)
            outs.append(h)
        return torch.cat(outs, dim=1) + self.skip(x)


class BinarizedStackedHourglass(StackedHourglass):
    """Stacked Hourglass with binarized residual units and 1x1 feature convs (Bulat & Tzimiropoulos, ICCV 2017).

    Same constructor arguments as :class:`StackedHourglass` except ``depthwise``, plus ``block`` (see
    :class:`BinaryResidual`). Inherits ``forward``, ``stride`` and ``min_input_multiple``: the module tree has
    the same attribute names (``stem``, ``hourglasses``, ``features``, ``heads``, ``remap_features``,
    ``remap_heatmaps``), so it is a drop-in replacement wherever a StackedHourglass is trained or evaluated.
    """

    def __init__(self, *, stacks: int, channels: int, num_joints: int, blocks: int = 1, depth: int = DEFAULT_DEPTH,
                 block: str = "hierarchical") -> None:
        if isinstance(channels, int) and channels >= 1 and channels % 8:  # non-positive: the base class says so
            raise ValueError(f"BinarizedStackedHourglass: channels must be a multiple of 8, got {channels}")
        super().__init__(stacks=stacks, channels=channels, num_joints=num_joints, blocks=blocks, depth=depth,
                         residual=partial(BinaryResidual, block=block),
                         conv1x1=partial(_bconv, kernel_size=1))
        self.block = block


def binarized_hourglass(*, stacks: int, channels: int, num_joints: int = 14, blocks: int = 1,
                        block: str = "hierarchical") -> BinarizedStackedHourglass:
    """A binarized stacked Hourglass (Bulat & Tzimiropoulos, ICCV 2017) with the plain Hourglass's topology."""
    return BinarizedStackedHourglass(stacks=stacks, channels=channels, num_joints=num_joints, blocks=blocks,
                                     block=block)


@torch.no_grad()
def binary_mac_fraction(model: nn.Module, input_size: int) -> float:
    """Fraction of the forward pass's multiply-accumulates done by :class:`BinaryConv2d` layers (XNOR/popcount
    operations on binary hardware); 0 for a real-valued model."""
    total = {"all": 0, "binary": 0}

    def hook(module: nn.Conv2d, _inputs, output: Tensor) -> None:
        macs = output.numel() * (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        total["all"] += macs
        if isinstance(module, BinaryConv2d):
            total["binary"] += macs

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, input_size, input_size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total["binary"] / max(total["all"], 1)
