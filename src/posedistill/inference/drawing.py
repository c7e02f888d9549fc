"""The one skeleton renderer: ``predict --draw`` and ``data show`` draw with it.

Colours (BGR) by the person's side: left limbs and joints blue, right red, the centre line green.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..skeleton import JointSet, get_joint_set

__all__ = ["SIDE_COLOURS", "draw_skeleton", "draw_pose"]

SIDE_COLOURS = {"left": (255, 128, 0), "right": (0, 0, 255), "centre": (0, 200, 0)}  # BGR
_SHIFT = 4  # sub-pixel bits for cv2 drawing


def _fixed(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * (1 << _SHIFT))), int(round(float(p[1]) * (1 << _SHIFT)))


def draw_skeleton(image: np.ndarray, points: np.ndarray, joint_set: str | JointSet, *,
                  shown: np.ndarray | None = None, line: int = 2, radius: int = 3) -> np.ndarray:
    """Draw limbs and joints of one person onto ``image`` (BGR uint8, in place; returned) at sub-pixel
    positions ``points`` (K, 2); only joints where ``shown`` is true (default all), only limbs between two."""
    js = get_joint_set(joint_set)
    pts = np.asarray(points, dtype=np.float64)
    ok = np.ones(len(pts), bool) if shown is None else np.asarray(shown, bool)
    for a, b in js.limbs:
        if ok[a] and ok[b]:
            cv2.line(image, _fixed(pts[a]), _fixed(pts[b]), SIDE_COLOURS[js.limb_side((a, b))], line, cv2.LINE_AA,
                     _SHIFT)
    for j, p in enumerate(pts):
        if ok[j]:
            cv2.circle(image, _fixed(p), radius, SIDE_COLOURS[js.side(j)], -1, cv2.LINE_AA, _SHIFT)
    return image


def draw_pose(image: np.ndarray, keypoints: np.ndarray, scores: np.ndarray | None, joint_set: str | JointSet, *,
              bbox: Sequence[float] | None = None, min_score: float = 0.0) -> np.ndarray:
    """Copy of a BGR image with one predicted person drawn (joints scoring at least ``min_score``) and its box."""
    out = image.copy()
    thick = max(1, int(round(max(image.shape[:2]) / 200)))
    if bbox is not None:
        x, y, w, h = (int(round(v)) for v in bbox)
        cv2.rectangle(out, (x, y), (x + w, y + h), (200, 200, 200), 1, cv2.LINE_AA)
    shown = None if scores is None else np.asarray(scores) >= min_score
    return draw_skeleton(out, keypoints, joint_set, shown=shown, line=thick + 1, radius=thick + 2)
