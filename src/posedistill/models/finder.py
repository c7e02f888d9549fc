"""The person finder: a small CenterNet-style network that finds people's boxes on a whole photo.

The photo is letterboxed to ``input_size`` x ``input_size`` (:func:`posedistill.data.transforms.letterbox`:
centred, padded with :data:`FILL_BGR`, the colour that normalises to zero) and normalised like the pose models
(:func:`posedistill.inference.finder.finder_input`). The output is on a stride-8 grid with 5 channels:

* 0: centre logit (sigmoid: the probability that a person's box centre lies in the cell);
* 1, 2: the centre's sub-cell offset (x, y) in cells, in [0, 1) after a sigmoid;
* 3, 4: log of the box width and height relative to ``input_size``.

The box is the extent of the person's visible joints (the pose network pads it by its own ``box_padding``).
:func:`decode_people` takes the local maxima (3 x 3) of the centre map, best first. Layers: a 3 x 3 stem,
depthwise-separable blocks to stride 32, one stride-64 context block and a light top-down path back to stride 8.
Width 24 at 128 input: about 0.02 GMACs and 0.23 M parameters. Training: :mod:`posedistill.training.finder`
(``posedistill train-finder``); measurements: ``docs/inference.md``, "Finding the person".
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CheckpointError
from .checkpoint import safe_load
from .meta import IMAGE_MEAN

__all__ = ["STRIDE", "FILL_BGR", "PersonFinder", "person_finder", "decode_people", "finder_from_checkpoint"]

STRIDE = 8
#: the letterbox padding: the BGR colour that normalises to about zero
FILL_BGR = tuple(int(round(255 * m)) for m in IMAGE_MEAN[::-1])


def _conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DWBlock(nn.Module):
    """Depthwise 3 x 3 (stride ``s``) then pointwise 1 x 1; residual when the shapes match."""

    def __init__(self, cin: int, cout: int, s: int = 1) -> None:
        super().__init__()
        self.dw = _conv_bn(cin, cin, 3, s, groups=cin)
        self.pw = _conv_bn(cin, cout, 1, act=False)
        self.residual = s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return F.relu(y + x if self.residual else y, inplace=True)


class PersonFinder(nn.Module):
    """Whole photo (N, 3, S, S) -> (N, 5, S / 8, S / 8) person centres and sizes (see the module docstring)."""

    def __init__(self, width: int = 24, input_size: int = 128) -> None:
        super().__init__()
        if width < 1 or input_size < 64 or input_size % 64:
            raise ValueError(f"width >= 1 and input_size a multiple of 64 are required, got {width}, {input_size}")
        w = width
        self.input_size = input_size
        self.width = width
        self.stem = _conv_bn(3, w, 3, 2)                                              # /2
        self.s4 = nn.Sequential(DWBlock(w, 2 * w, 2), DWBlock(2 * w, 2 * w))         # /4
        self.s8 = nn.Sequential(DWBlock(2 * w, 4 * w, 2), DWBlock(4 * w, 4 * w))     # /8
        self.s16 = nn.Sequential(DWBlock(4 * w, 6 * w, 2), DWBlock(6 * w, 6 * w))    # /16
        self.s32 = nn.Sequential(DWBlock(6 * w, 8 * w, 2), DWBlock(8 * w, 8 * w))    # /32
        self.s64 = DWBlock(8 * w, 8 * w, 2)                                          # /64: whole-photo context
        self.lat32 = _conv_bn(8 * w, 4 * w, 1)
        self.lat16 = _conv_bn(6 * w, 4 * w, 1)
        self.lat8 = _conv_bn(4 * w, 4 * w, 1)
        self.head = nn.Sequential(DWBlock(4 * w, 4 * w), nn.Conv2d(4 * w, 5, 1))
        nn.init.constant_(self.head[-1].bias, 0.0)
        with torch.no_grad():
            self.head[-1].bias[0] = -math.log((1 - 0.01) / 0.01)  # centre prior 1 %
            self.head[-1].bias[3:] = math.log(0.4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s4(self.stem(x))
        c8 = self.s8(x)
        c16 = self.s16(c8)
        c32 = self.s32(c16)
        c32 = c32 + F.interpolate(self.s64(c32), size=c32.shape[-2:], mode="nearest")
        p = self.lat32(c32)
        p = self.lat16(c16) + F.interpolate(p, size=c16.shape[-2:], mode="nearest")
        p = self.lat8(c8) + F.interpolate(p, size=c8.shape[-2:], mode="nearest")
        return self.head(p)


def person_finder(*, width: int = 24, input_size: int = 128) -> PersonFinder:
    """A new (untrained) :class:`PersonFinder`."""
    return PersonFinder(width, input_size)


def finder_from_checkpoint(path, *, map_location: str | torch.device = "cpu") -> PersonFinder:
    """A :class:`PersonFinder` from a checkpoint ``{"model": state_dict, "width": int, "input_size": int, ...}``
    (eval mode); an unusable file raises a one-line :class:`CheckpointError` naming it."""
    ckpt = safe_load(path, map_location=map_location)
    try:
        model = PersonFinder(int(ckpt["width"]), int(ckpt["input_size"]))
        model.load_state_dict(ckpt["model"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a person-finder checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]})") from exc
    return model.eval()


def decode_people(out: np.ndarray, *, top_k: int = 1, input_size: int = 128
                  ) -> list[list[tuple[float, np.ndarray]]]:
    """Per image of the finder's output (N, 5, h, w): up to ``top_k`` (score, box ``[x, y, w, h]`` in input
    pixels) from the local maxima (3 x 3) of the centre map, best first."""
    t = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))
    heat = torch.sigmoid(t[:, 0:1])
    peaks = torch.where(heat == F.max_pool2d(heat, 3, 1, 1), heat, torch.zeros_like(heat))
    n, _, h, w = heat.shape
    stride = input_size / w
    scores, idx = peaks.view(n, -1).topk(min(top_k, h * w), dim=1)
    offsets = torch.sigmoid(t[:, 1:3]).numpy()
    sizes = torch.exp(t[:, 3:5]).numpy() * input_size
    results = []
    for i in range(n):
        found = []
        for s, j in zip(scores[i].tolist(), idx[i].tolist()):
            cy, cx = divmod(j, w)
            x, y = (cx + offsets[i, 0, cy, cx]) * stride, (cy + offsets[i, 1, cy, cx]) * stride
            bw, bh = sizes[i, :, cy, cx]
            found.append((float(s), np.array([x - bw / 2, y - bh / 2, bw, bh], np.float64)))
        results.append(found)
    return results
