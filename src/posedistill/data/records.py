"""The per-person annotation record that every dataset reader yields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..models.meta import BOX_PADDING

__all__ = ["PersonRecord", "box_from_joints", "box_iou", "box_ious", "box_to_square", "whole_image_box", "torso_norm"]


@dataclass
class PersonRecord:
    """One annotated person.

    Attributes:
        image: path of the image file.
        joints: (K, 2) float32 joint coordinates (x, y) in image pixels, pixel centres at integers (0-based).
        visible: (K,) float32 in {0, 1}: 1 = visible/annotated and usable as a training target and for the metric.
        center: (2,) person box centre (x, y) in image pixels.
        scale: side in pixels of the square person box that is cropped (already padded).
        norm: the metric's normaliser in pixels: LSP/LSPET torso (left_shoulder to right_hip, nan when either is
            not visible), MPII 0.6 x head-box diagonal (nan without head boxes), nan otherwise.
        joint_set: name of the joint set (``"lsp"``, ``"mpii"``, ``"coco"``).
        meta: free-form extras (dataset index, raw flags, bbox, ...).
    """

    image: Path
    joints: np.ndarray
    visible: np.ndarray
    center: np.ndarray
    scale: float
    norm: float = float("nan")
    joint_set: str = "lsp"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image = Path(self.image)
        self.joints = np.asarray(self.joints, dtype=np.float32).reshape(-1, 2)
        self.visible = (np.asarray(self.visible, dtype=np.float32).reshape(-1) > 0).astype(np.float32)
        self.center = np.asarray(self.center, dtype=np.float64).reshape(2)
        self.scale = float(self.scale)
        self.norm = float(self.norm)


def box_from_joints(joints: np.ndarray, visible: np.ndarray, padding: float = BOX_PADDING) -> tuple[np.ndarray, float]:
    """Centre and padded square side of the bounding box of the visible joints (all joints if none visible)."""
    j = np.asarray(joints, dtype=np.float64)
    v = np.asarray(visible) > 0
    pts = j[v] if v.any() else j
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = max(float((hi - lo).max()), 1.0) * padding
    return (lo + hi) / 2.0, side


def box_to_square(box, padding: float = BOX_PADDING) -> tuple[np.ndarray, float]:
    """Centre and padded square side of a person box ``[x, y, w, h]``: ``(x + w/2, y + h/2)`` and
    ``max(w, h) * padding``. The one box convention of posedistill (COCO's): the whole image is the box
    ``[0, 0, W, H]`` (:func:`whole_image_box`), centred at ``(W/2, H/2)``; readers, unlabeled images and inference
    all use it."""
    x, y, w, h = (float(v) for v in box)
    return np.array([x + w / 2.0, y + h / 2.0]), max(w, h) * padding


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x, y, w, h]`` boxes (plain Python: the localiser calls it per pair in
    its loops, where a numpy call costs ten times as much)."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def box_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`box_iou` of the ``[x, y, w, h]`` boxes of ``a`` and ``b`` (N, 4), row by row, vectorised."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0, None)
    ih = np.clip(np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0, None)
    inter = iw * ih
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def whole_image_box(width: int, height: int) -> list[float]:
    """The person box ``[0, 0, width, height]`` used when no box is given."""
    return [0.0, 0.0, float(width), float(height)]


def torso_norm(joints: np.ndarray, visible: np.ndarray) -> float:
    """LSP torso size: distance from left_shoulder (9) to right_hip (2); nan when either is not visible."""
    if visible[9] > 0 and visible[2] > 0:
        return float(np.linalg.norm(np.asarray(joints[9], np.float64) - np.asarray(joints[2], np.float64)))
    return float("nan")
