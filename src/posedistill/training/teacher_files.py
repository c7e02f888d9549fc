"""What the FPD teacher-target stores share: the training people they hold heatmaps of (and those people's
fingerprint) and the reading of their ``meta.json``. Used by the per-epoch cache
(:mod:`posedistill.training.teacher_cache`) and the warped targets (:mod:`posedistill.training.warped_teacher`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ExperimentConfig
from ..data import PoseDataset
from ..models.pretrained import sha256_file
from ..errors import ConfigError, DataError
from ..models import STRIDE
from .datasets import read_training_data

__all__ = ["DTYPES", "META", "check_against", "check_teacher_file", "read_meta", "records_sha256",
           "refuse_other_settings", "short", "training_dataset"]

META = "meta.json"
DTYPES = ("float16", "float32")


def records_sha256(dataset: PoseDataset) -> str:
    """Fingerprint of the records a dataset samples from (image names, joints, boxes), independent of the root."""
    digest = hashlib.sha256()
    for rec in dataset.records:
        digest.update(Path(rec.image).name.encode())
        for array in (rec.joints, rec.visible, rec.center, np.asarray(rec.scale)):
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()


def training_dataset(cfg: ExperimentConfig, *, stride: int = STRIDE) -> tuple[PoseDataset, str]:
    """The training dataset exactly as :class:`~posedistill.training.Trainer` builds it (the same
    :func:`~posedistill.training.datasets.read_training_data` and pixel record, for a student whose heatmaps have
    ``stride``), and its joint set."""
    data = read_training_data(cfg, validation=False)
    return data.train_set(meta=data.meta(stride)), data.joint_set  # type: ignore[return-value]


def read_meta(root: Path, kind: str, *, build_hint: str) -> dict[str, Any]:
    """The ``meta.json`` of a teacher-target directory of format ``kind``: ConfigError when there is none (how to
    build one: ``build_hint``), DataError when it is unreadable or of another format."""
    path = root / META
    if not path.is_file():
        raise ConfigError(f"{root}: no teacher targets here (no {META}); build them with `{build_hint}`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable teacher-target metadata ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != kind:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise DataError(f"{path}: not a {kind} directory (format {found!r})")
    return meta


def short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_against(root: Path, have: dict[str, Any], want: dict[str, Any], keys: tuple[str, ...], *, subject: str,
                  there: str) -> None:
    """ConfigError naming the first of ``keys`` whose stored value (``have``, a store's meta) differs from the
    student config's (``want``): "ROOT: SUBJECT match the student config: KEY is X THERE, Y in the config"."""
    for key in keys:
        if have.get(key) != want.get(key):
            what = "training records (same count, different content)" if key == "records_sha256" else key
            raise ConfigError(f"{root}: {subject} match the student config: {what} is {short(have.get(key))} "
                              f"{there}, {short(want.get(key))} in the config")


def check_teacher_file(root: Path, meta: dict[str, Any], teacher: str | Path, *, subject: str) -> None:
    """ConfigError when the store of ``meta`` was built from another teacher checkpoint than ``teacher``
    (compared by content, so the same file under another path passes)."""
    sha = sha256_file(teacher)
    if sha != meta["teacher"]["sha256"]:
        raise ConfigError(f"{root}: {subject} built from another teacher ({meta['teacher']['path']}, sha256 "
                          f"{meta['teacher']['sha256'][:12]}), not {teacher} (sha256 {sha[:12]})")


def refuse_other_settings(root: Path, old: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...], *,
                          what: str) -> None:
    """ConfigError when the existing store's meta ``old`` differs from the one a build would write (``new``) in
    one of ``keys``; the teacher is compared without its path (the same file under any path)."""
    for key in keys:
        have, want = old.get(key), new.get(key)
        if key == "teacher":
            have, want = ({n: v for n, v in d.items() if n != "path"} for d in (have, want))
        if have != want:
            raise ConfigError(f"{root}: holds {what} for other settings ({key}: {short(have)} there, {short(want)} "
                              f"now); use another directory")
