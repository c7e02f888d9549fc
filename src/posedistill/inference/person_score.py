"""A learned person score for the localiser: how many of a candidate crop's joints are right?

The pose network's mean joint confidence ranks the localiser's candidate crops badly: on the localisation benchmark's
validation scenes the 128-input student is about as confident on a crop twice the person's size, or on a patch of
background, as on the person itself. :class:`PersonScorer` is a small MLP that predicts, from a crop's heatmaps and
decoded pose alone, the fraction of the crop's joints within PCK@0.2 of the truth. It is fitted per pose model
(:mod:`posedistill.inference.scorer_fit`) on candidates the localiser itself produces on training-split scenes, so it
sees the same mistakes it has to rank, and it needs nothing but the heatmaps: it works with any backend.

Features (:func:`candidate_features`, all in the crop's frame, so they are scale free): per joint the heatmap
peak, positive mass, peak / mass, spread around the peak, second peak / peak and minimum; the decoded joints in
crop coordinates (centre 0, side 1); the size and centre of the box spanned by all joints and by the most
confident 70 %; mean, minimum and median confidence; the IoU of the crop's box with the box its joints span.

A scorer is stored as JSON beside the weights it was fitted for (``<weights>.person.json``, with the weights'
sha256): :func:`scorer_for` finds it, and ignores one fitted for other weights.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.records import box_iou, box_to_square
from ..errors import CheckpointError
from ..io import atomic_write_text
from ..models.pretrained import sha256_file

__all__ = ["FEATURES_VERSION", "PersonScorer", "candidate_features", "scorer_for", "copy_scorer",
           "sidecar_path"]

FEATURES_VERSION = 1
_SUFFIX = ".person.json"


def heatmap_features(heatmaps: np.ndarray) -> np.ndarray:
    """(N, K, 6) per joint: peak, positive mass, peak / mass, spread about the peak (heatmap pixels), second
    peak (outside 3 pixels) / peak, minimum."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1).astype(np.float64)
    peak = flat.max(-1)
    pos = np.clip(flat, 0.0, None)
    mass = pos.sum(-1) + 1e-6
    ay, ax = np.divmod(flat.argmax(-1), w)
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = (yy.reshape(1, 1, -1) - ay[..., None]) ** 2 + (xx.reshape(1, 1, -1) - ax[..., None]) ** 2
    spread = np.sqrt((pos * d2).sum(-1) / mass)
    second = np.where(d2 > 9, flat, -np.inf).max(-1)
    return np.stack([peak, mass, peak / mass, spread, second / np.maximum(peak, 1e-6), flat.min(-1)], -1)


def candidate_features(heatmaps: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                       boxes: Sequence[Sequence[float]], *, padding: float) -> np.ndarray:
    """Features (N, F) of N candidate crops: their heatmaps (N, K, h, w), decoded keypoints (N, K, 2) in image
    pixels, scores (N, K) and person boxes ``[x, y, w, h]`` (the crop is the box made square and padded by
    ``padding``, the model's box padding)."""
    keypoints = np.asarray(keypoints, np.float64)
    scores = np.asarray(scores, np.float64)
    n, k = scores.shape
    hm = heatmap_features(np.asarray(heatmaps))
    keep = max(2, math.ceil(0.7 * k))
    rows = []
    for i in range(n):
        centre, side = box_to_square(boxes[i], padding)
        pts = (keypoints[i] - centre) / side
        lo, hi = pts.min(0), pts.max(0)
        top = pts[np.argsort(-scores[i])[:keep]]
        tlo, thi = top.min(0), top.max(0)
        span = np.maximum(hi - lo, 1e-3) * side
        joints_box = [*(centre + (lo + hi) / 2 * side - span / 2), *span]
        s = scores[i]
        rows.append(np.concatenate([
            s, pts.ravel(), hi - lo, (hi + lo) / 2, thi - tlo, (thi + tlo) / 2,
            [s.mean(), s.min(), np.median(s), float((hi - lo).max()), box_iou(boxes[i], joints_box)],
            hm[i].ravel(), hm[i].mean(0)]))
    return np.asarray(rows, np.float32).reshape(n, -1)


@dataclass
class PersonScorer:
    """A two-layer MLP on standardised :func:`candidate_features`; :meth:`score` is the predicted fraction of
    correct joints (0-1). ``layers`` is a list of ``(weight (out, in), bias (out,))``, ReLU between them."""

    num_joints: int
    mean: np.ndarray
    std: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]
    weights_sha256: str | None = None
    info: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, np.float32)
        self.std = np.asarray(self.std, np.float32)
        self.layers = [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in self.layers]

    @property
    def num_features(self) -> int:
        return int(self.mean.shape[0])

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N,) predicted fraction of correct joints of N candidates."""
        x = (np.asarray(features, np.float32) - self.mean) / self.std
        for j, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if j < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        return 1.0 / (1.0 + np.exp(-x[:, 0]))

    def to_dict(self) -> dict[str, Any]:
        return {"format": "posedistill-person-scorer", "features_version": FEATURES_VERSION,
                "num_joints": self.num_joints, "weights_sha256": self.weights_sha256, "info": self.info or {},
                "mean": self.mean.tolist(), "std": self.std.tolist(),
                "layers": [{"weight": w.tolist(), "bias": b.tolist()} for w, b in self.layers]}

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | os.PathLike) -> PersonScorer:
        """Read a scorer, with a one-line :class:`CheckpointError` naming the file for anything malformed."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            if data.get("format") != "posedistill-person-scorer":
                raise ValueError("not a posedistill person scorer")
            if data.get("features_version") != FEATURES_VERSION:
                raise ValueError(f"features version {data.get('features_version')}, this posedistill computes "
                                 f"{FEATURES_VERSION}: refit it with python -m posedistill.inference.scorer_fit")
            scorer = cls(int(data["num_joints"]), data["mean"], data["std"],
                         [(layer["weight"], layer["bias"]) for layer in data["layers"]],
                         data.get("weights_sha256"), data.get("info"))
            width = scorer.num_features
            for w, b in scorer.layers:
                if w.ndim != 2 or w.shape[1] != width or b.shape != (w.shape[0],):
                    raise ValueError("layer shapes do not chain")
                width = w.shape[0]
            if width != 1 or scorer.std.shape != scorer.mean.shape or scorer.mean.ndim != 1:
                raise ValueError("malformed standardisation or output layer")
            arrays = [scorer.mean, scorer.std, *(a for layer in scorer.layers for a in layer)]
            if not all(np.all(np.isfinite(a)) for a in arrays) or np.any(scorer.std <= 0):
                raise ValueError("non-finite numbers or a standard deviation <= 0")
            return scorer
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: cannot read person scorer: {exc}") from None

    def check(self, num_joints: int, where: str) -> None:
        if num_joints != self.num_joints:
            raise CheckpointError(f"{where}: person scorer is for {self.num_joints} joints, the model has "
                                  f"{num_joints}")


def sidecar_path(weights: str | os.PathLike) -> Path:
    """Where the scorer of ``weights`` lives: ``<weights>.person.json``."""
    weights = Path(weights)
    return weights.with_name(weights.name + _SUFFIX)


def copy_scorer(source: str | os.PathLike, targets: Sequence[str | os.PathLike]) -> list[Path]:
    """The scorer fitted for ``source`` written beside each of ``targets`` (files of the same network: its ONNX
    export, a slim copy; the same heatmaps, so the same features), each copy keyed to its file's sha256. Nothing
    (an empty list) when ``source`` has no scorer or one fitted for other weights."""
    path = sidecar_path(source)
    if not path.is_file():
        return []
    scorer = PersonScorer.load(path)
    if scorer.weights_sha256 and scorer.weights_sha256 != sha256_file(source):
        print(f"posedistill: {path} was fitted for other weights (sha256 differs); not copied", file=sys.stderr)
        return []
    written = []
    for target in targets:
        scorer.weights_sha256 = sha256_file(target)
        scorer.save(sidecar_path(target))
        written.append(sidecar_path(target))
    return written


def scorer_for(weights: str | os.PathLike, num_joints: int) -> PersonScorer | None:
    """The scorer stored beside ``weights``, or None when there is none or it was fitted for other weights."""
    path = sidecar_path(weights)
    if not path.is_file():
        return None
    scorer = PersonScorer.load(path)
    scorer.check(num_joints, str(path))
    if scorer.weights_sha256 and scorer.weights_sha256 != sha256_file(weights):
        print(f"posedistill: {path} was fitted for other weights (sha256 differs); ranking people by confidence",
              file=sys.stderr)
        return None
    return scorer
