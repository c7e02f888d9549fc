"""MPII from the json of the public PyTorch Hourglass / HRNet code (``joints_vis`` 1 = annotated)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError
from ...models.meta import BOX_PADDING
from ...skeleton import MPII
from ..records import PersonRecord
from .common import BadPeople, as_array, load_json

__all__ = ["read_mpii"]

def read_mpii(json_path: str | Path, image_dir: str | Path | None = None, *, split: str | None = None,
              skip_bad: bool = False) -> list[PersonRecord]:
    """Read MPII from the json used by the public PyTorch Hourglass/HRNet code.

    Accepted entries (a list, or ``{"annotations": [...]}``):

    - HRNet/MMPose: ``image``, ``joints`` (16 x 2), ``joints_vis`` (16), ``center``, ``scale`` (box height / 200);
      one file per split (``train.json``, ``valid.json``).
    - pytorch-pose (bearpaw): ``img_paths``, ``joint_self`` (16 x 3), ``objpos``, ``scale_provided``,
      ``isValidation``; ``split="train"|"valid"`` filters on ``isValidation``.

    Optional ``head_box`` / ``headbox`` [x1, y1, x2, y2] gives ``norm`` = 0.6 x its diagonal (PCKh).
    As in those code bases, MATLAB 1-based coordinates are made 0-based, the centre is moved down by 15 x scale
    and the box is enlarged by the box padding (1.25): ``PersonRecord.scale`` = 1.25 x 200 x scale pixels.
    ``image_dir`` defaults to the json's directory.
    """
    path = Path(json_path)
    image_dir = Path(image_dir) if image_dir is not None else path.parent
    data = load_json(path)
    if isinstance(data, dict) and "annotations" in data:
        data = data["annotations"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of people, got {type(data).__name__}")
    if split not in (None, "train", "valid", "val"):
        raise ConfigError(f"unknown MPII split {split!r}; valid: train, valid")
    bad = BadPeople(path, skip_bad)
    records: list[PersonRecord] = []
    k_mpii = MPII.num_joints
    for i, a in enumerate(data):
        try:
            if not isinstance(a, dict):
                bad(f"person {i}: not an object")
                continue
            if "joint_self" in a:  # bearpaw format
                if split is not None and bool(a.get("isValidation", 0)) != (split != "train"):
                    continue
                js = as_array(a.get("joint_self"), (3,))
                if js is None:
                    bad(f"person {i}: 'joint_self' is not a list of [x, y, v]")
                    continue
                joints, vis = js[:, :2], js[:, 2]
                image, center, s = a.get("img_paths"), a.get("objpos"), a.get("scale_provided")
            else:
                joints = as_array(a.get("joints"), (2,))
                if joints is None:
                    bad(f"person {i}: 'joints' missing or not a list of [x, y]")
                    continue
                vis = np.asarray(a.get("joints_vis", np.ones(len(joints))), dtype=np.float64).reshape(-1)
                image, center, s = a.get("image"), a.get("center"), a.get("scale")
            if joints.shape[0] != k_mpii or vis.shape[0] != k_mpii:
                bad(f"person {i}: {joints.shape[0]} joints but the MPII joint set has {k_mpii}")
                continue
            if not isinstance(image, str) or center is None or s is None:
                bad(f"person {i}: missing 'image', 'center' or 'scale'")
                continue
            try:
                c = np.asarray(center, dtype=np.float64).reshape(2)
                s = float(s)
            except (TypeError, ValueError):
                bad(f"person {i}: bad 'center' or 'scale'")
                continue
            if not (np.isfinite(c).all() and np.isfinite(s) and s > 0):
                bad(f"person {i}: non-finite centre or non-positive scale")
                continue
            visible = vis > 0
            if not np.isfinite(joints[visible]).all():
                bad(f"person {i}: non-finite joint coordinates")
                continue
            joints = np.where(np.isfinite(joints), joints - 1.0, 0.0)
            c = c - 1.0
            c[1] += 15.0 * s
            norm = float("nan")
            hb = a.get("head_box", a.get("headbox"))
            if hb is not None:
                hb = np.asarray(hb, dtype=np.float64).reshape(-1)
                if hb.shape[0] != 4 or not np.isfinite(hb).all():
                    bad(f"person {i}: 'head_box' must be 4 finite numbers [x1, y1, x2, y2]")
                    continue
                norm = 0.6 * float(np.hypot(hb[2] - hb[0], hb[3] - hb[1]))
            records.append(PersonRecord(
                image=image_dir / image, joints=joints, visible=visible, center=c, scale=BOX_PADDING * 200.0 * s,
                norm=norm, joint_set="mpii", meta={"index": i, "dataset": "mpii", "mpii_scale": s},
            ))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            bad(f"person {i}: malformed value ({type(exc).__name__}: {exc})")
            continue
    bad.warn(len(data))
    return records
