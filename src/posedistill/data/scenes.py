"""Synthetic scenes with exact ground truth, made from real LSPET photos: the person scorer's training data
(:mod:`posedistill.inference.scorer_fit`) and the localisation and video-tracking benchmarks' test scenes.

A photo is warped (scaled, rotated, moved) onto a larger canvas whose background is another photo pixelated into
coarse blocks: real colours and textures at the scale of a person, but no second person. The joints go through
the same affine map, so every scene keeps its ground truth.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .images import load_image
from .readers import lspet_split
from .records import PersonRecord

__all__ = ["default_lspet_root", "lspet_people", "pixelated", "place", "similarity", "transform_points",
           "joints_box", "inside", "make_scene", "scene_for"]


def default_lspet_root() -> Path:
    """``$POSEDISTILL_DATA/lspet`` when that is set, else ``../shared/data/lspet`` (the configs' ``data.root``)."""
    env = os.environ.get("POSEDISTILL_DATA")
    return Path(env) / "lspet" if env else Path("../shared/data/lspet")


def lspet_people(root: Path, split: str, limit: int | None = None, *, need_torso: bool = False
                 ) -> list[PersonRecord]:
    """LSPET people of a split (with ``need_torso``, only those whose torso, the PCK normaliser, is visible;
    PCK skips the others anyway)."""
    recs = [r for r in lspet_split(root, split) if not need_torso or (np.isfinite(r.norm) and r.norm > 0)]
    return recs[:limit] if limit else recs


def pixelated(photo: np.ndarray, width: int, height: int, blocks: int = 12) -> np.ndarray:
    """``photo`` resized to ``width`` x ``height`` and pixelated to ``blocks`` blocks across its longer side."""
    scale = blocks / max(width, height)
    small = cv2.resize(photo, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def place(image: np.ndarray, background: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``image`` warped by the 2x3 ``matrix`` over a copy of ``background``."""
    h, w = background.shape[:2]
    return cv2.warpAffine(image, matrix, (w, h), dst=background.copy(), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_TRANSPARENT)


def similarity(scale: float, angle_deg: float, centre_from: np.ndarray, centre_to: np.ndarray) -> np.ndarray:
    """2x3 matrix that scales by ``scale`` and rotates by ``angle_deg`` about ``centre_from``, moved to ``centre_to``."""
    m = cv2.getRotationMatrix2D((float(centre_from[0]), float(centre_from[1])), angle_deg, scale)
    m[:, 2] += np.asarray(centre_to, np.float64) - np.asarray(centre_from, np.float64)
    return m


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def joints_box(joints: np.ndarray, visible: np.ndarray) -> list[float]:
    """``[x, y, w, h]`` of the visible joints (what ``predict --bbox`` expects for a ground-truth box)."""
    pts = np.asarray(joints, np.float64)[np.asarray(visible) > 0]
    lo, hi = pts.min(0), pts.max(0)
    size = np.maximum(hi - lo, 1.0)
    return [float(lo[0]), float(lo[1]), float(size[0]), float(size[1])]


def inside(box: list[float], area: list[float]) -> bool:
    """Whether the centre of ``box`` lies in ``area`` (both ``[x, y, w, h]``)."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return area[0] <= cx <= area[0] + area[2] and area[1] <= cy <= area[1] + area[3]


def make_scene(rec, background_photo: np.ndarray, rng: np.random.Generator):
    """(canvas, joints, torso, photo box) for one person: random scale, aspect and position, pixelated background;
    the photo box ``[x, y, w, h]`` is where the photo lies on the canvas."""
    image = load_image(rec.image)
    h, w = image.shape[:2]
    person = max(joints_box(rec.joints, rec.visible)[2:])
    k = rng.uniform(2.0, 3.0)
    long_side = int(k * max(h, w))
    aspect = rng.uniform(0.7, 1.0)
    cw, ch = (long_side, int(long_side * aspect)) if rng.random() < 0.5 else (int(long_side * aspect), long_side)
    scale = rng.uniform(0.25, 0.6) * max(cw, ch) / person
    scale = min(scale, 0.98 * cw / w, 0.98 * ch / h)  # the photo must fit inside the canvas
    sw, sh = w * scale, h * scale
    x0, y0 = rng.uniform(0, cw - sw), rng.uniform(0, ch - sh)
    m = similarity(scale, 0.0, np.array([0.0, 0.0]), np.array([x0, y0]))
    canvas = place(image, pixelated(background_photo, cw, ch), m)
    return canvas, transform_points(rec.joints, m), rec.norm * scale, [float(x0), float(y0), float(sw), float(sh)]


def scene_for(rec, backgrounds, seed: int):
    """:func:`make_scene` of one person with a background drawn from ``backgrounds`` (records), reproducibly
    from ``(seed, the person's LSPET index)``."""
    rng = np.random.default_rng([seed, rec.meta["index"]])
    bg = load_image(backgrounds[int(rng.integers(len(backgrounds)))].image)
    return make_scene(rec, bg, rng)
