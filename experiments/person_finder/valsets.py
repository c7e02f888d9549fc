"""The validation scenes of the evaluation scripts here: each person of a split on its synthetic scene of
:mod:`posedistill.data.scenes` (seed 14, as ``benchmarks/localisation.py``; backgrounds from the 8,800-image
training split, so not the localisation benchmark's own scenes)."""

from __future__ import annotations

from pathlib import Path

from posedistill.data import lspet_split
from posedistill.data.scenes import scene_for

SCENE_SEED = 14  # benchmarks/localisation.py's default


def scenes(root: Path, split: str):
    """(canvas, joints, norm, visible) of each person of ``split`` on its synthetic scene."""
    backgrounds = lspet_split(root, "train")
    for rec in lspet_split(root, split):
        if (rec.visible > 0).sum() < 2:
            continue
        canvas, joints, norm, _ = scene_for(rec, backgrounds, SCENE_SEED)
        yield canvas, joints, norm, rec.visible
