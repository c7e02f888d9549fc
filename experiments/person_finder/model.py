"""A tiny CenterNet-style person finder: whole photo (letterboxed to S x S) -> person centre heatmap + box size.

Output at stride 8 (S / 8 cells a side), 5 channels:

* 0: centre logit (sigmoid -> probability that a person's box centre lies in the cell);
* 1, 2: sub-cell offset of the centre (x, y) in cells, in [0, 1) after a sigmoid;
* 3, 4: log of the box width and height relative to S.

The box is the extent of the person's visible joints (the pose predictor pads it by 1.25 itself).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

STRIDE = 8


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DWBlock(nn.Module):
    """Depthwise 3x3 (stride s) + pointwise 1x1; residual when shapes match."""

    def __init__(self, cin: int, cout: int, s: int = 1) -> None:
        super().__init__()
        self.dw = conv_bn(cin, cin, 3, s, groups=cin)
        self.pw = conv_bn(cin, cout, 1, act=False)
        self.residual = s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return F.relu(y + x if self.residual else y, inplace=True)


class PersonFinder(nn.Module):
    """Backbone to stride 32 (plus a stride-64 context block), a light top-down path back to stride 8, a head."""

    def __init__(self, width: int = 16, input_size: int = 128) -> None:
        super().__init__()
        w = width
        self.input_size = input_size
        self.width = width
        self.stem = conv_bn(3, w, 3, 2)                                              # /2
        self.s4 = nn.Sequential(DWBlock(w, 2 * w, 2), DWBlock(2 * w, 2 * w))         # /4
        self.s8 = nn.Sequential(DWBlock(2 * w, 4 * w, 2), DWBlock(4 * w, 4 * w))     # /8
        self.s16 = nn.Sequential(DWBlock(4 * w, 6 * w, 2), DWBlock(6 * w, 6 * w))    # /16
        self.s32 = nn.Sequential(DWBlock(6 * w, 8 * w, 2), DWBlock(8 * w, 8 * w))    # /32
        self.s64 = DWBlock(8 * w, 8 * w, 2)                                          # /64: whole-photo context
        self.lat32 = conv_bn(8 * w, 4 * w, 1)
        self.lat16 = conv_bn(6 * w, 4 * w, 1)
        self.lat8 = conv_bn(4 * w, 4 * w, 1)
        self.head = nn.Sequential(DWBlock(4 * w, 4 * w), nn.Conv2d(4 * w, 5, 1))
        nn.init.constant_(self.head[-1].bias, 0.0)
        with torch.no_grad():
            self.head[-1].bias[0] = -math.log((1 - 0.01) / 0.01)  # centre prior 1 %
            self.head[-1].bias[3:] = math.log(0.4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.s4(x)
        c8 = self.s8(x)
        c16 = self.s16(c8)
        c32 = self.s32(c16)
        c64 = self.s64(c32)
        c32 = c32 + F.interpolate(c64, size=c32.shape[-2:], mode="nearest")
        p = self.lat32(c32)
        p = self.lat16(c16) + F.interpolate(p, size=c16.shape[-2:], mode="nearest")
        p = self.lat8(c8) + F.interpolate(p, size=c8.shape[-2:], mode="nearest")
        return self.head(p)


def fuse_for_inference(model: PersonFinder) -> PersonFinder:
    """Fold every BatchNorm into the convolution before it (eval mode); returns the same model."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Sequential) and len(module) >= 2 and isinstance(module[0], nn.Conv2d) \
                and isinstance(module[1], nn.BatchNorm2d):
            module[0] = torch.nn.utils.fusion.fuse_conv_bn_eval(module[0], module[1])
            module[1] = nn.Identity()
    return model


def decode(out: np.ndarray, *, top_k: int = 1, stride: int = STRIDE, input_size: int = 128
           ) -> list[list[tuple[float, np.ndarray]]]:
    """Per image of ``out`` (N, 5, h, w): up to ``top_k`` (score, box [x, y, w, h] in input pixels), best first,
    from the local maxima (3x3) of the centre map."""
    t = torch.from_numpy(np.ascontiguousarray(out))
    heat = torch.sigmoid(t[:, 0:1])
    peaks = (heat == F.max_pool2d(heat, 3, 1, 1)).float() * heat
    n, _, h, w = heat.shape
    results = []
    flat = peaks.view(n, -1)
    scores, idx = flat.topk(min(top_k, h * w), dim=1)
    for i in range(n):
        found = []
        for s, j in zip(scores[i].tolist(), idx[i].tolist()):
            cy, cx = divmod(j, w)
            ox, oy = torch.sigmoid(t[i, 1:3, cy, cx]).tolist()
            bw, bh = (torch.exp(t[i, 3:5, cy, cx]) * input_size).tolist()
            x, y = (cx + ox) * stride, (cy + oy) * stride
            found.append((s, np.array([x - bw / 2, y - bh / 2, bw, bh])))
        results.append(found)
    return results
