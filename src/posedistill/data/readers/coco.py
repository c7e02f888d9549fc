"""COCO person keypoints through pycocotools (v in {0, 1, 2}, visible = v > 0: labelled)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...models.meta import BOX_PADDING
from ...skeleton import COCO
from ..records import PersonRecord, box_from_joints, box_to_square
from .common import BadPeople, as_array

__all__ = ["read_coco"]

def read_coco(ann_file: str | Path, image_dir: str | Path | None = None, *, min_keypoints: int = 1,
              skip_bad: bool = False, padding: float = BOX_PADDING) -> list[PersonRecord]:
    """Read COCO person keypoints through pycocotools: one record per non-crowd person with at least
    ``min_keypoints`` labelled keypoints; the crop box is the annotation's bbox made square and padded.

    ``visible`` = v > 0 (labelled, including v = 1 "labelled but occluded"); the raw v is in ``meta["v"]``,
    the area (for OKS) in ``meta["area"]``; ``norm`` is nan. ``image_dir`` defaults to the json's directory.
    """
    from pycocotools.coco import COCO as CocoApi

    path = Path(ann_file)
    image_dir = Path(image_dir) if image_dir is not None else path.parent
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api = CocoApi(str(path))
    except Exception as exc:  # json errors, assertion errors on a bad layout
        raise DataError(f"{path}: not a COCO annotation file ({type(exc).__name__}: {exc})") from None
    bad = BadPeople(path, skip_bad)
    records: list[PersonRecord] = []
    _malformed = (TypeError, ValueError, KeyError, IndexError, AttributeError)  # pycocotools trusts the layout
    try:
        cat_ids = api.getCatIds(catNms=["person"]) or [1]
        img_ids = sorted(api.getImgIds())
    except _malformed as exc:
        raise DataError(f"{path}: not a COCO annotation file (bad 'images'/'categories': "
                        f"{type(exc).__name__}: {exc})") from None
    total = 0
    for img_id in img_ids:
        try:
            info = api.loadImgs(img_id)[0]
            anns = api.loadAnns(api.getAnnIds(imgIds=img_id, catIds=cat_ids, iscrowd=False))
        except _malformed as exc:
            raise DataError(f"{path}: malformed image {img_id!r} or its annotations "
                            f"({type(exc).__name__}: {exc})") from None
        for ann in anns:
            total += 1
            try:
                record = _coco_record(ann, info, img_id, image_dir, min_keypoints, padding, bad)
            except _malformed as exc:
                bad(f"annotation {ann.get('id') if isinstance(ann, dict) else '?'}: malformed "
                    f"({type(exc).__name__}: {exc})")
                continue
            if record is not None:
                records.append(record)
    bad.warn(total)
    return records


def _coco_record(ann, info, img_id, image_dir: Path, min_keypoints: int, padding: float,
                 bad: BadPeople) -> PersonRecord | None:
    """One COCO annotation -> record (None: skipped); ``bad`` reports (or raises on) a bad one."""
    raw = ann.get("keypoints", [])
    kp = as_array(np.reshape(raw, (-1, 3)) if len(raw) % 3 == 0 else None, (3,))
    if kp is None or kp.shape[0] != COCO.num_joints:
        bad(f"annotation {ann.get('id')}: {len(raw) / 3:g} keypoints but the COCO joint set has {COCO.num_joints}")
        return None
    if not np.isfinite(kp).all():
        bad(f"annotation {ann.get('id')}: non-finite keypoint values")
        return None
    if int((kp[:, 2] > 0).sum()) < min_keypoints:
        return None
    x, y, w, h = (float(v) for v in ann.get("bbox", (0, 0, 0, 0)))
    if not (w > 0 and h > 0):
        center, side = box_from_joints(kp[:, :2], kp[:, 2] > 0, padding)
    else:
        center, side = box_to_square((x, y, w, h), padding)
    if not (np.isfinite(center).all() and np.isfinite(side) and side > 0):
        bad(f"annotation {ann.get('id')}: non-finite or empty box")
        return None
    if not isinstance(info.get("file_name"), str):
        bad(f"annotation {ann.get('id')}: image {img_id!r} has no 'file_name'")
        return None
    return PersonRecord(
        image=image_dir / info["file_name"], joints=kp[:, :2], visible=kp[:, 2] > 0, center=center,
        scale=side, joint_set="coco",
        meta={"dataset": "coco", "image_id": img_id, "ann_id": ann.get("id"), "bbox": [x, y, w, h],
              "area": float(ann.get("area", w * h)), "v": kp[:, 2].astype(np.int8)},
    )
