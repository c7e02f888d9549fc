"""Named splits and image-number ranges of a dataset, and the joint set a dataset kind implies."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConfigError
from .readers import read_dataset, reader_spec
from .records import PersonRecord

__all__ = ["read_split", "image_range", "joint_set_for"]

_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_WHOLE = ("all", "")


def image_range(split: str) -> range | None:
    """0-based image indices of an image-number range ``"a-b"`` (1-based, inclusive), or None when ``split`` is
    not such a range; ConfigError for a range that is empty or starts below 1."""
    match = _RANGE.match(split)
    if not match:
        return None
    first, last = int(match.group(1)), int(match.group(2))
    if not 1 <= first <= last:
        raise ConfigError(f"bad image-number range {split!r}")
    return range(first - 1, last)


def read_split(kind: str, root: str | Path, split: str, *, skip_bad: bool = False) -> list[PersonRecord]:
    """Records of a named split (``train``/``val``/``test``...), an image-number range ``"a-b"`` (1-based,
    inclusive; kinds with numbered images: LSP and LSPET) or, for kinds without splits, ``"all"``."""
    spec = reader_spec(kind)
    indices = image_range(split)
    if indices is not None:
        if not spec.numbered:
            raise ConfigError(f"image-number ranges like {split!r} are for lsp/lspet data, not {spec.kind}")
        return read_dataset(spec.kind, root, indices=indices, skip_bad=skip_bad)
    if not spec.has_splits and split in _WHOLE:
        return read_dataset(spec.kind, root, skip_bad=skip_bad)
    return read_dataset(spec.kind, root, split=split, skip_bad=skip_bad)


def joint_set_for(kind: str, records: list[PersonRecord] | None = None, *, where: str = "dataset") -> str:
    """Joint-set name of a dataset kind (for ``json`` data: the records' own joint set)."""
    spec = reader_spec(kind)
    if spec.joint_set is not None:
        return spec.joint_set
    if records:
        return records[0].joint_set
    raise ConfigError(f"{where}: cannot tell the joint set of an empty {spec.kind} dataset")
