"""LSP and LSP extended: ``joints.mat`` + ``images/``, the project's splits and image-number selection.

- LSP ``joints.mat``: shape (3, 14, N), flag **0 = visible**, 1 = occluded (occluded joints still have a
  location, but are given visible = 0 here).
- LSP extended ``joints.mat``: shape (14, 3, N), flag **1 = visible**, 0 = not visible (coordinates then
  meaningless, often 0 or negative).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError
from ...models.meta import BOX_PADDING
from ...skeleton import LSP
from ..records import PersonRecord, box_from_joints, torso_norm
from .common import BadPeople

__all__ = ["read_lsp", "read_lspet", "lsp_split", "lspet_split", "lspet_split_images", "LSPET_SPLITS",
           "LSP_SPLITS"]

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
    bad = BadPeople(path, skip_bad)
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
             padding: float = BOX_PADDING) -> list[PersonRecord]:
    """Read LSP: ``root/joints.mat`` of shape (3, 14, N) (flag 0 = visible) and images ``root/images/imNNNN.jpg``.

    ``root`` may also be the ``joints.mat`` path. ``indices`` are 0-based image indices (im0001 is 0). The box is
    the bounding box of all 14 joints (all are labelled in LSP), padded by ``padding``.
    """
    return _read_leeds(root, indices, extended=False, skip_bad=skip_bad, padding=padding)


def read_lspet(root: str | Path, *, indices: Iterable[int] | None = None, skip_bad: bool = False,
               padding: float = BOX_PADDING) -> list[PersonRecord]:
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


def lspet_split_images(split: str) -> str | None:
    """The images of a named LSPET split in words (``"train"`` -> ``"im00001-06500 and im07501-09800"``), from
    :data:`LSPET_SPLITS`; None for a name that is not one (e.g. an image range)."""
    ranges = LSPET_SPLITS.get(split)
    if ranges is None:
        return None
    return " and ".join(f"im{start + 1:05d}-{stop:05d}" for start, stop in ranges)


def lsp_split(root: str | Path, split: str, **kw) -> list[PersonRecord]:
    """The standard LSP split: ``"train"`` im0001-1000, ``"test"`` im1001-2000 (clipped to the images present)."""
    _, path = _mat_root(root)
    idx = _split_indices(LSP_SPLITS, split, _num_people(path, -1), "LSP")
    return read_lsp(root, indices=idx, **kw)
