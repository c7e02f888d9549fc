"""Weight files verified by sha256: the hash, the manifest entries and the package's default weights.

``weights_dir/default.json`` (default ``src/posedistill/weights/``) is ``{"file": NAME, "sha256": HEX, ...}``
naming a checkpoint or ONNX file in the same folder (the deployed FPD student), optionally with
``"teacher": {"file": NAME, "sha256": HEX, ...}`` for its teacher. ``tools/ship_weights.py`` writes it with
:func:`manifest_entry`; :func:`default_weights` verifies it before every load. The teacher cache records its
teacher with :func:`sha256_file` too.
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

__all__ = ["DEFAULT_WEIGHTS_DIR", "MANIFEST", "ROLES", "sha256_file", "manifest_entry", "default_weights",
           "ShippedModel", "shipped_pair"]

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MANIFEST = "default.json"
ROLES = ("student", "teacher")


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


def default_weights(weights_dir: str | os.PathLike | None = None, *, role: str = "student") -> Path:
    """Path of the default weights of ``role`` in ``weights_dir`` (default :data:`DEFAULT_WEIGHTS_DIR`), verified
    by sha256. Raises :class:`CheckpointError` (one line) when the manifest or the file is missing, malformed or
    does not match its checksum."""
    if role not in ROLES:
        raise ValueError(f"role must be 'student' or 'teacher', got {role!r}")
    folder = Path(weights_dir) if weights_dir is not None else DEFAULT_WEIGHTS_DIR
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise CheckpointError(
            f"{manifest}: no default weights are installed yet; pass --weights CKPT_OR_ONNX (a checkpoint from "
            "`posedistill train` or a model from `posedistill export`)"
        )
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
        if role == "teacher":
            info = info.get("teacher") or {}
        name, expected = str(info["file"]), str(info["sha256"]).lower()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{manifest}: malformed default-weights manifest ({type(exc).__name__}; "
                              "expected {\"file\": ..., \"sha256\": ...})") from exc
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
    """The teacher and student the package ships (``{"teacher": ..., "student": ...}``), as the manifest of
    ``weights_dir`` (default :data:`DEFAULT_WEIGHTS_DIR`) describes them; the paper's pair (``hg8_256`` and
    ``hg4_128``, depth 4, 256 input) where no weights are installed. ``bench`` and ``profile`` default to it.
    Reads the description only: the files are verified when they are loaded (:func:`default_weights`)."""
    folder = Path(weights_dir) if weights_dir is not None else DEFAULT_WEIGHTS_DIR
    try:
        student = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        teacher = student["teacher"]
        return {role: ShippedModel(str(info["model"]), int(info["depth"]), int(info["input_size"]))
                for role, info in (("teacher", teacher), ("student", student))}
    except (OSError, ValueError, KeyError, TypeError):
        return {"teacher": ShippedModel("hg8_256", DEFAULT_DEPTH, 256),
                "student": ShippedModel("hg4_128", DEFAULT_DEPTH, 256)}
