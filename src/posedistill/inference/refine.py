"""One re-crop of a given person box on the network's own joints: what ``Predictor(refine=...)`` does with the box
a detector (or a user) gives.

The student loses accuracy when the box is loose or shifted (the crop is the box's padded square, so a box 1.5x
the joints' extent shows the person at two thirds of the size it was trained on). After the first pass on the
given box, :meth:`BoxRefinement.extent` is the box the predicted joints span; :meth:`BoxRefinement.needed` says
whether it disagrees with the given box (the IoU of the two boxes' squares, the crops the network sees, below
``min_iou``: a square box around a tall person is the same crop as the person's own box), and :meth:`BoxRefinement.crop_box` is the box of
the second pass: that extent scaled by ``margin`` about its centre. The defaults were chosen on the LSPET
validation slice with ``benchmarks/box_sensitivity.py --split val --sweep`` (``docs/inference.md``, "Loose and
shifted boxes").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.records import box_ious
from ..errors import ConfigError

__all__ = ["BoxRefinement", "REFINE", "REFINE_CHOICES", "check_refine", "squares"]

#: the values of ``refine``: re-crop when the joints disagree with the box, always, never
REFINE = ("auto", True, False)
#: the words of ``predict --refine``, ``serve --refine`` and a request's ``refine=`` for them
REFINE_CHOICES = {"auto": "auto", "on": True, "off": False}


def check_refine(refine: bool | str) -> bool | str:
    """``refine`` as one of :data:`REFINE` (``"auto"``, True, False); a one-line :class:`ConfigError` otherwise."""
    if isinstance(refine, (bool, np.bool_)):
        return bool(refine)
    if refine == "auto":
        return "auto"
    raise ConfigError(f"refine must be 'auto', True or False, got {refine!r}")


def squares(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) squares of side max(w, h) about the centres of ``boxes`` (N, 4) ``[x, y, w, h]``: the crop squares
    without the model's padding, which scales both squares of a pair alike and leaves their IoU unchanged."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    side = boxes[:, 2:].max(axis=1, keepdims=True)
    return np.concatenate([boxes[:, :2] + boxes[:, 2:] / 2 - side / 2, side, side], axis=1)


@dataclass(frozen=True)
class BoxRefinement:
    """The rule of the re-crop.

    Args:
        min_iou: ``refine="auto"`` re-crops a person whose given box's square has an IoU below this with the square
            of its predicted joints' extent (a box the joints agree with is left alone).
        margin: the second crop's box is the joints' extent scaled by this about its centre (the crop adds the
            model's box padding on top, as for any box).
    """

    min_iou: float = 0.7
    margin: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_iou <= 1.0 or self.margin <= 0:
            raise ConfigError(f"refinement needs 0 <= min_iou <= 1 and margin > 0, got {self.min_iou}, "
                              f"{self.margin}")

    @staticmethod
    def extent(keypoints: np.ndarray) -> np.ndarray:
        """(N, 4) boxes ``[x, y, w, h]`` spanned by each person's predicted joints (N, K, 2), at least 1 px a side."""
        pts = np.asarray(keypoints, np.float64)
        lo, hi = pts.min(axis=1), pts.max(axis=1)
        return np.concatenate([lo, np.maximum(hi - lo, 1.0)], axis=1)

    def needed(self, boxes: np.ndarray, keypoints: np.ndarray, refine: bool | str) -> np.ndarray:
        """(N,) which people to crop again: all (``refine`` True), none (False), or those whose given ``boxes``
        disagree with their joints' extent (``"auto"``: the IoU of their squares below ``min_iou``)."""
        refine = check_refine(refine)
        if refine == "auto":
            return self.agreement(boxes, keypoints) < self.min_iou
        return np.full(len(boxes), refine, bool)

    def agreement(self, boxes: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """(N,) the IoU of each given box's square with the square of its person's joints' extent: what
        ``"auto"`` compares with ``min_iou``."""
        return box_ious(squares(boxes), squares(self.extent(keypoints)))

    def crop_box(self, keypoints: np.ndarray) -> np.ndarray:
        """(N, 4) boxes of the second crop: the joints' extent scaled by ``margin`` about its centre."""
        box = self.extent(keypoints)
        centre, size = box[:, :2] + box[:, 2:] / 2, box[:, 2:] * self.margin
        return np.concatenate([centre - size / 2, size], axis=1)
