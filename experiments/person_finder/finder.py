"""Inference side of the prototype: photo -> person boxes (:class:`Finder`, the package's), and photo -> keypoints with the
shipped student (:func:`photo_to_keypoints`: finder, one crop, optionally one refinement crop)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from posedistill.inference.finder import Finder as _Finder

HERE = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = HERE / "finder.pt"


class Finder(_Finder):
    """The package's :class:`posedistill.inference.finder.Finder` on a checkpoint of train.py (eager PyTorch)."""

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS) -> None:
        super().__init__(weights, backend="torch")


def scale_box(box: np.ndarray, factor: float) -> np.ndarray:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    w, h = max(box[2] * factor, 4.0), max(box[3] * factor, 4.0)
    return np.array([cx - w / 2, cy - h / 2, w, h])


def confident_box(keypoints: np.ndarray, scores: np.ndarray, box: np.ndarray, *, min_score: float = 0.1,
                  min_joints: int = 4) -> np.ndarray:
    """Extent of the joints scored >= ``min_score``; ``box`` when fewer than ``min_joints`` are (the first-look
    rule of benchmarks/box_sensitivity.py; the product's re-crop is :mod:`posedistill.inference.refine`)."""
    keep = scores >= min_score
    if keep.sum() < min_joints:
        return box
    pts = keypoints[keep]
    lo, hi = pts.min(0), pts.max(0)
    return np.array([lo[0], lo[1], max(hi[0] - lo[0], 1.0), max(hi[1] - lo[1], 1.0)])


def student_on_box(predictor, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (K, 2) and scores (K,) of the ``posedistill.Predictor`` in one box."""
    people = predictor(image, [[float(v) for v in box]])
    return people.keypoints[0], people.scores[0]


def photo_to_keypoints(finder: Finder, predictor, image: np.ndarray, *, box_scale: float = 1.0,
                       refine: bool = False, times: dict | None = None):
    """Keypoints (K, 2), scores (K,) and the final box of the main person of ``image``; ``times`` (if given)
    receives the seconds of each stage."""
    t0 = time.perf_counter()
    found = finder(image, top_k=1)
    box = scale_box(found[0][1], box_scale)
    t1 = time.perf_counter()
    pts, scores = student_on_box(predictor, image, box)
    t2 = time.perf_counter()
    if refine:
        box = confident_box(pts, scores, box)
        pts, scores = student_on_box(predictor, image, box)
    t3 = time.perf_counter()
    if times is not None:
        times.update(find=t1 - t0, pose=t2 - t1, refine=t3 - t2, total=t3 - t0)
    return pts, scores, box
