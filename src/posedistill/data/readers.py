"""Dataset readers: LSP, LSP extended, MPII (HRNet/PyTorch-Hourglass json), COCO keypoints and a simple json.

Every reader returns a list of :class:`~posedistill.data.records.PersonRecord` (one per person) with joints in
0-based image pixels (pixel centres at integers). A malformed annotation raises
:class:`~posedistill.errors.DataError` naming the file and the problem; with ``skip_bad=True`` the bad person is
left out instead and all such people are counted in one warning. A file whose overall layout is wrong (wrong shape,
not json, missing keys) always raises.

Visibility conventions (the flag in the files is converted to ``visible`` in {0, 1}, 1 = usable):

- LSP ``joints.mat``: shape (3, 14, N), flag **0 = visible**, 1 = occluded (occluded joints still have a
  location, but are given visible = 0 here).
- LSP extended ``joints.mat``: shape (14, 3, N), flag **1 = visible**, 0 = not visible (coordinates then
  meaningless, often 0 or negative).
- MPII json: ``joints_vis`` 1 = annotated.  COCO: v in {0, 1, 2}, visible = v > 0 (labelled).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..skeleton import COCO, LSP, MPII, get_joint_set
from .records import PersonRecord, box_from_joints, box_to_square, torso_norm

__all__ = [
    "read_lsp", "read_lspet", "lsp_split", "lspet_split", "LSPET_SPLITS", "LSP_SPLITS", "read_mpii",
    "read_coco", "read_jsonfile", "read_dataset", "DATASET_KINDS", "READERS", "ReaderSpec", "reader_spec",
]

#: The project's LSPET protocol: each split is a tuple of 0-based image index ranges [start, stop) (im00001 is
#: index 0). ``train`` is im00001-06500 plus im07501-09800 (8,800 people); ``train6500`` is the 6,500-image
#: training set that every run before 2026-12-05 used, kept so that those runs reproduce.
LSPET_SPLITS: dict[str, tuple[tuple[int, int], ...]] = {
    "train": ((0, 6500), (7500, 9800)),
    "train6500": ((0, 6500),),
    "val": ((6500, 7000),),
    "test": ((7000, 7500),),
}
#: The standard LSP split: first 1000 images train, last 1000 test.
LSP_SPLITS: dict[str, tuple[tuple[int, int], ...]] = {"train": ((0, 1000),), "test": ((1000, 2000),)}
#: Default padding of a box computed from joints or a bbox.
PADDING = 1.25


class _Bad:
    """Collects bad people for one reader call: raise at once, or count them and warn once at the end."""

    def __init__(self, path: Path, skip: bool) -> None:
        self.path, self.skip, self.reasons = path, skip, []

    def __call__(self, reason: str) -> None:
        if not self.skip:
            raise DataError(f"{self.path}: {reason}")
        self.reasons.append(reason)

    def warn(self, total: int) -> None:
        if self.reasons:
            warnings.warn(
                f"{self.path}: skipped {len(self.reasons)} of {total} people with bad annotations "
                f"(first: {self.reasons[0]})", stacklevel=3,
            )


def _loadmat(path: Path) -> np.ndarray:
    import scipy.io

    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for corrupt files
        raise DataError(f"{path}: cannot read MATLAB file ({type(exc).__name__}: {exc})") from None
    if "joints" not in mat:
        names = [k for k in mat if not k.startswith("__")]
        raise DataError(f"{path}: no 'joints' variable (found: {', '.join(names) or 'none'})")
    try:
        return np.asarray(mat["joints"], dtype=np.float64)
    except (TypeError, ValueError) as exc:  # strings, cells or structs instead of a numeric array
        raise DataError(f"{path}: 'joints' is not a numeric array ({type(exc).__name__})") from None


def _mat_root(root: str | Path) -> tuple[Path, Path]:
    root = Path(root)
    return (root.parent, root) if root.suffix == ".mat" else (root, root / "joints.mat")


def _select(n: int, indices: Iterable[int] | None, path: Path) -> list[int]:
    if indices is None:
        return list(range(n))
    out = [int(i) for i in indices]
    bad = [i for i in out if not 0 <= i < n]
    if bad:
        raise ConfigError(f"{path}: image indices {bad[:5]} out of range 0..{n - 1}")
    return out


def _read_leeds(root: str | Path, indices, *, extended: bool, skip_bad: bool, padding: float) -> list[PersonRecord]:
    base, path = _mat_root(root)
    j = _loadmat(path)
    name = "LSP extended" if extended else "LSP"
    want, other = ("(14, 3, N)", "(3, 14, N)") if extended else ("(3, 14, N)", "(14, 3, N)")
    if j.ndim == 2:
        j = j[..., None]
    if j.ndim != 3:
        raise DataError(f"{path}: 'joints' has shape {j.shape}; {name} expects {want}")
    if extended:
        if j.shape[1] != 3 and j.shape[0] == 3:
            raise DataError(f"{path}: 'joints' has shape {j.shape}, the LSP layout {other}; read it as 'lsp'")
        if j.shape[1] != 3:
            raise DataError(f"{path}: 'joints' has shape {j.shape}; {name} expects {want}")
        if j.shape[0] != LSP.num_joints:
            raise DataError(f"{path}: {j.shape[0]} joints per person but the LSP joint set has {LSP.num_joints}")
        arr = j.transpose(2, 0, 1)  # (N, 14, 3)
    else:
        if j.shape[0] != 3 and j.shape[1] == 3:
            raise DataError(f"{path}: 'joints' has shape {j.shape}, the LSP extended layout {other}; "
                            "read it as 'lspet'")
        if j.shape[0] != 3:
            raise DataError(f"{path}: 'joints' has shape {j.shape}; {name} expects {want}")
        if j.shape[1] != LSP.num_joints:
            raise DataError(f"{path}: {j.shape[1]} joints per person but the LSP joint set has {LSP.num_joints}")
        arr = j.transpose(2, 1, 0)
    bad = _Bad(path, skip_bad)
    records: list[PersonRecord] = []
    sel = _select(arr.shape[0], indices, path)
    for k in sel:
        xy, flag = arr[k, :, :2], arr[k, :, 2]
        if not np.isfinite(arr[k]).all():
            bad(f"image {k + 1} (index {k}) has non-finite joint values")
            continue
        if not np.isin(flag, (0.0, 1.0)).all():
            bad(f"image {k + 1} (index {k}) has visibility flags other than 0/1: {np.unique(flag)[:4]}")
            continue
        visible = (flag == 1) if extended else (flag == 0)
        center, side = box_from_joints(xy, visible if extended else np.ones(14), padding)
        image = base / "images" / (f"im{k + 1:05d}.jpg" if extended else f"im{k + 1:04d}.jpg")
        pts = xy[visible] if visible.any() else xy
        records.append(PersonRecord(
            image=image, joints=xy, visible=visible, center=center, scale=side,
            norm=torso_norm(xy, visible), joint_set="lsp",
            meta={"index": k, "dataset": "lspet" if extended else "lsp", "flags": flag.astype(np.int8),
                  "bbox_size": float((pts.max(0) - pts.min(0)).max())},
        ))
    bad.warn(len(sel))
    return records


def read_lsp(root: str | Path, *, indices: Iterable[int] | None = None, skip_bad: bool = False,
             padding: float = PADDING) -> list[PersonRecord]:
    """Read LSP: ``root/joints.mat`` of shape (3, 14, N) (flag 0 = visible) and images ``root/images/imNNNN.jpg``.

    ``root`` may also be the ``joints.mat`` path. ``indices`` are 0-based image indices (im0001 is 0). The box is
    the bounding box of all 14 joints (all are labelled in LSP), padded by ``padding``.
    """
    return _read_leeds(root, indices, extended=False, skip_bad=skip_bad, padding=padding)


def read_lspet(root: str | Path, *, indices: Iterable[int] | None = None, skip_bad: bool = False,
               padding: float = PADDING) -> list[PersonRecord]:
    """Read LSP extended: ``root/joints.mat`` of shape (14, 3, N) (flag 1 = visible), images ``imNNNNN.jpg``.

    The box is the bounding box of the visible joints padded by ``padding``; ``norm`` is nan when the left
    shoulder or right hip is not visible (their coordinates are then meaningless); ``meta["bbox_size"]`` (longest
    side of the visible joints' box) is a fallback normaliser for such people.
    """
    return _read_leeds(root, indices, extended=True, skip_bad=skip_bad, padding=padding)


def _split_indices(splits: dict[str, tuple[tuple[int, int], ...]], split: str, n: int,
                   what: str) -> list[int]:
    if split not in splits:
        raise ConfigError(f"unknown {what} split {split!r}; valid: {', '.join(splits)}")
    return [i for start, stop in splits[split] for i in range(min(start, n), min(stop, n))]


def _num_people(path: Path, axis: int) -> int:
    return _loadmat(path).shape[axis]


def lspet_split(root: str | Path, split: str, **kw) -> list[PersonRecord]:
    """The project's LSPET split: ``"train"`` im00001-06500 + im07501-09800, ``"train6500"`` im00001-06500 (the
    training set before 2026-12-05), ``"val"`` im06501-07000, ``"test"`` im07001-07500."""
    _, path = _mat_root(root)
    idx = _split_indices(LSPET_SPLITS, split, _num_people(path, -1), "LSPET")
    return read_lspet(root, indices=idx, **kw)


def lsp_split(root: str | Path, split: str, **kw) -> list[PersonRecord]:
    """The standard LSP split: ``"train"`` im0001-1000, ``"test"`` im1001-2000 (clipped to the images present)."""
    _, path = _mat_root(root)
    idx = _split_indices(LSP_SPLITS, split, _num_people(path, -1), "LSP")
    return read_lsp(root, indices=idx, **kw)


def _load_json(path: Path):
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def _array(value, shape_tail: tuple[int, ...]) -> np.ndarray | None:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return a if a.ndim == len(shape_tail) + 1 and a.shape[1:] == shape_tail else None


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
    and the box is enlarged by 1.25: ``PersonRecord.scale`` = 1.25 x 200 x scale pixels.
    ``image_dir`` defaults to the json's directory.
    """
    path = Path(json_path)
    image_dir = Path(image_dir) if image_dir is not None else path.parent
    data = _load_json(path)
    if isinstance(data, dict) and "annotations" in data:
        data = data["annotations"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of people, got {type(data).__name__}")
    if split not in (None, "train", "valid", "val"):
        raise ConfigError(f"unknown MPII split {split!r}; valid: train, valid")
    bad = _Bad(path, skip_bad)
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
                js = _array(a.get("joint_self"), (3,))
                if js is None:
                    bad(f"person {i}: 'joint_self' is not a list of [x, y, v]")
                    continue
                joints, vis = js[:, :2], js[:, 2]
                image, center, s = a.get("img_paths"), a.get("objpos"), a.get("scale_provided")
            else:
                joints = _array(a.get("joints"), (2,))
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
                image=image_dir / image, joints=joints, visible=visible, center=c, scale=1.25 * 200.0 * s,
                norm=norm, joint_set="mpii", meta={"index": i, "dataset": "mpii", "mpii_scale": s},
            ))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            bad(f"person {i}: malformed value ({type(exc).__name__}: {exc})")
            continue
    bad.warn(len(data))
    return records


def read_coco(ann_file: str | Path, image_dir: str | Path | None = None, *, min_keypoints: int = 1,
              skip_bad: bool = False, padding: float = PADDING) -> list[PersonRecord]:
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
    bad = _Bad(path, skip_bad)
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
                 bad: _Bad) -> PersonRecord | None:
    """One COCO annotation -> record (None: skipped); ``bad`` reports (or raises on) a bad one."""
    raw = ann.get("keypoints", [])
    kp = _array(np.reshape(raw, (-1, 3)) if len(raw) % 3 == 0 else None, (3,))
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


def read_jsonfile(path: str | Path, *, skip_bad: bool = False, padding: float = PADDING) -> list[PersonRecord]:
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
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise DataError(f"{path}: expected an object with a 'people' list")
    if not isinstance(data.get("joint_set", "lsp"), str) or not isinstance(data.get("image_root", "."), str):
        raise DataError(f"{path}: 'joint_set' and 'image_root' must be strings")
    try:
        jset = get_joint_set(data.get("joint_set", "lsp"))
    except ConfigError as exc:
        raise DataError(f"{path}: {exc}") from None
    root = path.parent / data.get("image_root", ".")
    bad = _Bad(path, skip_bad)
    records: list[PersonRecord] = []
    for i, p in enumerate(data["people"]):
        try:
            if not isinstance(p, dict) or not isinstance(p.get("image"), str):
                bad(f"person {i}: missing 'image'")
                continue
            kp = p.get("keypoints")
            arr = _array(kp, (3,))
            if arr is None:
                arr2 = _array(kp, (2,))
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


def _find_json(path: Path, kind: str) -> Path:
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) != 1:
            raise DataError(f"{path}: expected one .json annotation file for {kind}, found {len(found)}")
        return found[0]
    return path


@dataclass(frozen=True)
class ReaderSpec:
    """One dataset kind: how to read it and what it implies.

    Attributes:
        kind: the name in configs and on the command line.
        read: ``read(path, split, **kw) -> records``.
        joint_set: the joint set of every record (None: each file says, as ``json`` does).
        has_splits: accepts named splits (``split=...``).
        numbered: accepts image-number ranges such as ``"1-6500"`` (LSP, LSPET).
    """

    kind: str
    read: Callable[..., list[PersonRecord]]
    joint_set: str | None
    has_splits: bool = False
    numbered: bool = False


def _read_leeds_kind(split_reader: Callable[..., list[PersonRecord]],
                     whole_reader: Callable[..., list[PersonRecord]]) -> Callable[..., list[PersonRecord]]:
    return lambda path, split, **kw: split_reader(path, split, **kw) if split else whole_reader(path, **kw)


#: The single list of dataset kinds: config validation, the CLI choices and the split helpers all read it.
READERS: dict[str, ReaderSpec] = {
    "lsp": ReaderSpec("lsp", _read_leeds_kind(lsp_split, read_lsp), "lsp", has_splits=True, numbered=True),
    "lspet": ReaderSpec("lspet", _read_leeds_kind(lspet_split, read_lspet), "lsp", has_splits=True, numbered=True),
    "mpii": ReaderSpec("mpii", lambda p, s, **kw: read_mpii(_find_json(p, "mpii"), split=s, **kw), "mpii",
                       has_splits=True),
    "coco": ReaderSpec("coco", lambda p, s, **kw: read_coco(_find_json(p, "coco"), **kw), "coco"),
    "json": ReaderSpec("json", lambda p, s, **kw: read_jsonfile(_find_json(p, "json"), **kw), None),
}
DATASET_KINDS = tuple(READERS)


def reader_spec(kind: str) -> ReaderSpec:
    """The :class:`ReaderSpec` of a dataset kind; ConfigError listing the valid kinds otherwise."""
    spec = READERS.get(str(kind).lower())
    if spec is None:
        raise ConfigError(f"unknown dataset kind {kind!r}; valid: {', '.join(DATASET_KINDS)}")
    return spec


def read_dataset(kind: str, path: str | Path, *, split: str | None = None, **kw) -> list[PersonRecord]:
    """Read a dataset by kind (a key of :data:`READERS`: ``"lsp"``, ``"lspet"``, ``"mpii"``, ``"coco"``, ``"json"``).

    ``path`` is the dataset directory (LSP/LSPET: containing ``joints.mat`` and ``images/``) or the annotation
    file (a directory holding exactly one ``.json`` is accepted for mpii/coco/json). ``split`` selects the LSP
    (train/test), LSPET (train/val/test) or MPII (train/valid) split; other keywords go to the reader.
    """
    spec = reader_spec(kind)
    if split is not None and not spec.has_splits:
        raise ConfigError(f"dataset kind {spec.kind!r} takes no split (got {split!r})")
    return spec.read(Path(path), split, **kw)
