"""Records for a folder of unlabeled images (FPD's distillation-only samples)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError
from ..skeleton import get_joint_set
from .records import PersonRecord, box_to_square, whole_image_box

__all__ = ["unlabeled_records", "UNLABELED_SUFFIXES"]

UNLABELED_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def unlabeled_records(directory: str | Path, joint_set: str, *, padding: float = 1.0,
                      person_box: Callable[[np.ndarray], Sequence[float]] | None = None) -> list[PersonRecord]:
    """One record per image of ``directory``, no visible joints. The person box is ``person_box(image)`` (``[x, y,
    w, h]`` of the BGR image, e.g. a person finder's best box) or, without it, the whole image; the crop is the
    box's square padded by ``padding`` (1: the square of the whole image's longer side)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: unlabeled image folder not found")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in UNLABELED_SUFFIXES)
    if not files:
        raise DataError(f"{directory}: no images ({', '.join(UNLABELED_SUFFIXES)}) in the unlabeled folder")
    k = get_joint_set(joint_set).num_joints
    records = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR if person_box else cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DataError(f"{path}: unreadable image")
        box = person_box(image) if person_box else whole_image_box(image.shape[1], image.shape[0])
        center, side = box_to_square(box, padding)
        records.append(PersonRecord(image=path, joints=np.zeros((k, 2)), visible=np.zeros(k), center=center,
                                    scale=side, joint_set=joint_set,
                                    meta={"unlabeled": True, "box": "person" if person_box else "whole"}))
    return records
