"""Weight files verified by sha256: the hash, the manifest and the package's shipped models.

``weights_dir/default.json`` (default ``src/posedistill/weights/``) lists the shipped models::

    {"format": "posedistill-weights", "version": 2,
     "default": "tiny",                                   # the student `predict` uses without --model
     "students": {"tiny": ENTRY, "base": ENTRY, ...},      # the deployed FPD students, by name
     "teacher": ENTRY,                                     # their teacher (optional)
     "finder": ENTRY}                                      # the person finder of photos without a box (optional)

    ENTRY = {"file": "NAME.pt", "sha256": HEX,            # the checkpoint (retraining, distilling, --backend torch)
             "onnx": {"file": "NAME.onnx", "sha256": HEX}, # its ONNX export, what inference runs by default
             "model": ..., "depth": ..., "input_size": ..., ...provenance}

Every file is in the same folder. ``tools/ship_weights.py`` writes the manifest with :func:`manifest_entry`;
:func:`default_weights` verifies a file's sha256 before every load. A student is run by ONNX Runtime by default
(several times faster than eager PyTorch on these small networks: ``benchmarks/student_candidates.py``); its
checkpoint is the file to retrain or distil from. The teacher cache records its teacher with :func:`sha256_file`
too.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from .hourglass import DEFAULT_DEPTH

__all__ = ["DEFAULT_WEIGHTS_DIR", "MANIFEST", "MANIFEST_FORMAT", "ROLES", "sha256_file", "manifest_entry",
           "read_manifest", "shipped_students", "default_weights", "ShippedModel", "shipped_pair"]

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MANIFEST = "default.json"
MANIFEST_FORMAT = "posedistill-weights"
ROLES = ("student", "teacher", "finder")
BACKENDS = ("torch", "onnx")


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def manifest_entry(folder: str | os.PathLike, name: str, **extra: Any) -> dict[str, Any]:
    """A manifest entry ``{"file": name, "sha256": ..., **extra}`` for the file ``folder/name``."""
    return {"file": name, "sha256": sha256_file(Path(folder) / name), **extra}


def _folder(weights_dir: str | os.PathLike | None) -> Path:
    return Path(weights_dir) if weights_dir is not None else DEFAULT_WEIGHTS_DIR


def read_manifest(weights_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest of ``weights_dir`` (default :data:`DEFAULT_WEIGHTS_DIR`), its layout checked; a missing or
    malformed manifest raises a one-line :class:`CheckpointError`."""
    manifest = _folder(weights_dir) / MANIFEST
    if not manifest.is_file():
        raise CheckpointError(
            f"{manifest}: no default weights are installed yet; pass --weights CKPT_OR_ONNX (a checkpoint from "
            "`posedistill train` or a model from `posedistill export`)"
        )
    expected = f'expected {{"format": "{MANIFEST_FORMAT}", "default": NAME, "students": {{NAME: ...}}}}'
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
        ok = (isinstance(info, dict) and info.get("format") == MANIFEST_FORMAT and isinstance(info["students"], dict)
              and info["students"] and str(info["default"]) in info["students"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{manifest}: malformed default-weights manifest ({type(exc).__name__}; "
                              f"{expected})") from exc
    if not ok:
        raise CheckpointError(f"{manifest}: malformed default-weights manifest ({expected})")
    return info


def shipped_students(weights_dir: str | os.PathLike | None = None) -> tuple[list[str], str]:
    """The names of the shipped students and the default one."""
    info = read_manifest(weights_dir)
    return list(info["students"]), str(info["default"])


def default_weights(weights_dir: str | os.PathLike | None = None, *, role: str = "student",
                    model: str | None = None, backend: str | None = None) -> Path:
    """Path of a shipped model's file in ``weights_dir`` (default :data:`DEFAULT_WEIGHTS_DIR`), verified by sha256.

    ``role="student"``: the student named ``model`` (None: the manifest's default); ``"teacher"``: the teacher;
    ``"finder"``: the person finder (:mod:`posedistill.models.finder`).
    ``backend``: ``"onnx"`` (the ONNX export), ``"torch"`` (the checkpoint), None (the ONNX export where one is
    shipped, else the checkpoint). Raises :class:`CheckpointError` (one line) when the manifest or the file is
    missing, malformed or does not match its checksum, or when no such model is shipped.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be 'torch', 'onnx' or None, got {backend!r}")
    folder = _folder(weights_dir)
    manifest = folder / MANIFEST
    info = read_manifest(folder)
    if role != "student":
        if model is not None:
            raise ValueError(f"model names a student; the {role} is one")
        entry, what = info.get(role), role
        if not isinstance(entry, dict):
            raise CheckpointError(f"{manifest}: no {role} is shipped")
    else:
        name = str(info["default"]) if model is None else model
        entry, what = info["students"].get(name), f"student {name!r}"
        if not isinstance(entry, dict):
            raise CheckpointError(f"{manifest}: no shipped model {name!r} (shipped: "
                                  f"{', '.join(info['students'])})")
    if backend != "torch" and isinstance(entry.get("onnx"), dict):
        entry = entry["onnx"]
    elif backend == "onnx":
        raise CheckpointError(f"{manifest}: the {what} has no ONNX export shipped")
    try:
        name, expected = str(entry["file"]), str(entry["sha256"]).lower()
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{manifest}: malformed entry for the {what} (expected "
                              '{"file": ..., "sha256": ...})') from exc
    path = folder / name
    if Path(name).name != name or not path.is_file():
        raise CheckpointError(f"{path}: default weights named by {manifest} not found")
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(f"{path}: sha256 {actual[:12]}... does not match {expected[:12]}... in {manifest} "
                              "(corrupt or replaced file)")
    return path


@dataclass(frozen=True)
class ShippedModel:
    """What the manifest says a shipped model is: registry name, hourglass depth, input size."""

    model: str
    depth: int
    input_size: int


def shipped_pair(weights_dir: str | os.PathLike | None = None) -> dict[str, ShippedModel]:
    """The teacher and the default student the package ships (``{"teacher": ..., "student": ...}``), as the
    manifest of ``weights_dir`` (default :data:`DEFAULT_WEIGHTS_DIR`) describes them; the paper's pair
    (``hg8_256`` and ``hg4_128``, depth 4, 256 input) where no weights are installed. ``bench`` and ``profile``
    default to it. Reads the description only: the files are verified when they are loaded
    (:func:`default_weights`)."""
    try:
        info = read_manifest(weights_dir)
        student, teacher = info["students"][info["default"]], info["teacher"]
        return {role: ShippedModel(str(entry["model"]), int(entry["depth"]), int(entry["input_size"]))
                for role, entry in (("teacher", teacher), ("student", student))}
    except (CheckpointError, KeyError, TypeError, ValueError):
        return {"teacher": ShippedModel("hg8_256", DEFAULT_DEPTH, 256),
                "student": ShippedModel("hg4_128", DEFAULT_DEPTH, 256)}
