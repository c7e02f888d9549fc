"""The simple posedistill json format (see docs/data.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError
from ...models.meta import BOX_PADDING
from ...skeleton import get_joint_set
from ..records import PersonRecord, box_from_joints, box_to_square, torso_norm
from .common import BadPeople, as_array, load_json

__all__ = ["read_jsonfile"]

def read_jsonfile(path: str | Path, *, skip_bad: bool = False, padding: float = BOX_PADDING) -> list[PersonRecord]:
    """Read the simple posedistill json format (see docs/data.md)::

        {"joint_set": "lsp", "image_root": "images",
         "people": [{"image": "a.jpg", "keypoints": [[x, y, v], ...],
                     "bbox": [x, y, w, h], "center": [x, y], "scale": 200.0, "norm": 40.0}]}

    ``keypoints``: K entries of [x, y, v] (v > 0: visible) or [x, y] (visible), 0-based pixels. ``image`` is
    relative to ``image_root``, itself relative to the json's directory (default: that directory). ``center`` +
    ``scale`` (square side in pixels), else ``bbox``, else the visible keypoints give the crop box (padded by
    ``padding``). ``norm`` defaults to the LSP torso for ``lsp`` and nan otherwise.
    """
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise DataError(f"{path}: expected an object with a 'people' list")
    if not isinstance(data.get("joint_set", "lsp"), str) or not isinstance(data.get("image_root", "."), str):
        raise DataError(f"{path}: 'joint_set' and 'image_root' must be strings")
    try:
        jset = get_joint_set(data.get("joint_set", "lsp"))
    except ConfigError as exc:
        raise DataError(f"{path}: {exc}") from None
    root = path.parent / data.get("image_root", ".")
    bad = BadPeople(path, skip_bad)
    records: list[PersonRecord] = []
    for i, p in enumerate(data["people"]):
        try:
            if not isinstance(p, dict) or not isinstance(p.get("image"), str):
                bad(f"person {i}: missing 'image'")
                continue
            kp = p.get("keypoints")
            arr = as_array(kp, (3,))
            if arr is None:
                arr2 = as_array(kp, (2,))
                arr = None if arr2 is None else np.concatenate([arr2, np.ones((len(arr2), 1))], axis=1)
            if arr is None:
                bad(f"person {i}: 'keypoints' must be a list of [x, y, v] or [x, y]")
                continue
            if arr.shape[0] != jset.num_joints:
                bad(f"person {i}: {arr.shape[0]} keypoints but the {jset.name} joint set has {jset.num_joints}")
                continue
            visible = arr[:, 2] > 0
            if not np.isfinite(arr[visible]).all() or not np.isfinite(arr[:, 2]).all():
                bad(f"person {i}: non-finite keypoint values")
                continue
            if not visible.any() and "center" not in p and "bbox" not in p:
                bad(f"person {i}: no visible keypoint and no 'center'/'bbox' to place the crop")
                continue
            joints = np.where(np.isfinite(arr[:, :2]), arr[:, :2], 0.0)
            try:
                if "center" in p and "scale" in p:
                    center, side = np.asarray(p["center"], dtype=np.float64).reshape(2), float(p["scale"])
                elif "bbox" in p:
                    x, y, w, h = (float(v) for v in p["bbox"])
                    center, side = box_to_square((x, y, w, h), padding)
                else:
                    center, side = box_from_joints(joints, visible, padding)
            except (TypeError, ValueError):
                bad(f"person {i}: bad 'center'/'scale'/'bbox'")
                continue
            if not (np.isfinite(center).all() and np.isfinite(side) and side > 0):
                bad(f"person {i}: non-finite centre or non-positive box size")
                continue
            norm = p.get("norm", torso_norm(joints, visible) if jset.name == "lsp" else float("nan"))
            records.append(PersonRecord(
                image=root / p["image"], joints=joints, visible=visible, center=center, scale=side,
                norm=float(norm) if norm is not None else float("nan"), joint_set=jset.name,
                meta={"index": i, "dataset": "json"},
            ))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            bad(f"person {i}: malformed value ({type(exc).__name__}: {exc})")
            continue
    bad.warn(len(data["people"]))
    return records
