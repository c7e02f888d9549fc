"""Validation inputs of the finder during training: the LSPET val photos letterboxed (the plain case) and the val
scenes of :mod:`posedistill.data.scenes` (seed 14, as ``benchmarks/localisation.py``), each with the true box (extent of
the visible joints) in canvas pixels. Cached once under /tmp."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from posedistill.data import lspet_split
from posedistill.data.scenes import scene_for

from data import joints_extent, letterbox, to_input

SCENE_SEED = 14  # benchmarks/localisation.py's default


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def scenes(root: Path, split: str):
    """(canvas, joints, norm, visible) of each person of ``split`` on its synthetic scene."""
    backgrounds = lspet_split(root, "train")
    for rec in lspet_split(root, split):
        if (rec.visible > 0).sum() < 2:
            continue
        canvas, joints, norm, _ = scene_for(rec, backgrounds, SCENE_SEED)
        yield canvas, joints, norm, rec.visible


def val_sets(root: Path, size: int, split: str = "val") -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
    path = Path(f"/tmp/pf_valsets_{split}_{size}.npz")
    if not path.exists():
        out = {}
        for name in ("photos", "scenes"):
            inputs, boxes = [], []
            if name == "photos":
                items = ((cv2.imread(str(r.image), cv2.IMREAD_COLOR), r.joints, r.visible)
                         for r in lspet_split(root, split) if (r.visible > 0).sum() >= 2)
            else:
                items = ((c, j, v) for c, j, _, v in scenes(root, split))
            for image, joints, visible in items:
                canvas, scale, offset = letterbox(image, size)
                b = joints_extent(joints, visible)
                inputs.append(to_input(canvas))
                boxes.append(np.array([b[0] * scale + offset[0], b[1] * scale + offset[1], b[2] * scale,
                                       b[3] * scale]))
            out[f"{name}_x"], out[f"{name}_b"] = np.stack(inputs), np.stack(boxes)
        np.savez(path.with_suffix(".tmp.npz"), **out)
        path.with_suffix(".tmp.npz").rename(path)
    z = np.load(path)
    return {name: (z[f"{name}_x"], list(z[f"{name}_b"])) for name in ("photos", "scenes")}
