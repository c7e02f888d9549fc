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
from ..errors import ConfigError, DataError
from ..models import STRIDE
from .datasets import read_training_data

__all__ = ["DTYPES", "META", "read_meta", "records_sha256", "short", "training_dataset"]

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
