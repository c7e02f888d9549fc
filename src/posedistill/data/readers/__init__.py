"""Dataset readers, one module per format, and :data:`READERS`, the single registry of dataset kinds.

Formats: LSP and LSP extended (:mod:`.leeds`), MPII (:mod:`.mpii`, HRNet/PyTorch-Hourglass json), COCO
keypoints (:mod:`.coco`) and the simple posedistill json (:mod:`.jsonfile`).

Every reader returns a list of :class:`~posedistill.data.records.PersonRecord` (one per person) with joints in
0-based image pixels (pixel centres at integers). A malformed annotation raises
:class:`~posedistill.errors.DataError` naming the file and the problem; with ``skip_bad=True`` the bad person is
left out instead and all such people are counted in one warning. A file whose overall layout is wrong (wrong shape,
not json, missing keys) always raises.

Each format's flag is converted to ``visible`` in {0, 1}, 1 = usable (the conventions are in each module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError
from ..records import PersonRecord
from .coco import read_coco
from .common import find_json
from .jsonfile import read_jsonfile
from .leeds import LSP_SPLITS, LSPET_SPLITS, lsp_split, lspet_split, lspet_split_images, read_lsp, read_lspet
from .mpii import read_mpii

__all__ = [
    "read_lsp", "read_lspet", "lsp_split", "lspet_split", "lspet_split_images", "LSPET_SPLITS", "LSP_SPLITS", "read_mpii",
    "read_coco", "read_jsonfile", "read_dataset", "DATASET_KINDS", "READERS", "ReaderSpec", "reader_spec",
]

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
    "mpii": ReaderSpec("mpii", lambda p, s, **kw: read_mpii(find_json(p, "mpii"), split=s, **kw), "mpii",
                       has_splits=True),
    "coco": ReaderSpec("coco", lambda p, s, **kw: read_coco(find_json(p, "coco"), **kw), "coco"),
    "json": ReaderSpec("json", lambda p, s, **kw: read_jsonfile(find_json(p, "json"), **kw), None),
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
