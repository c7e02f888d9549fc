"""Typed run files: the run manifest (``run.json``) the engine writes and the evaluation JSON of ``evaluate``.

Both record the exact command line that made them and the software versions, so ``posedistill report`` quotes
commands instead of rebuilding them from flag names:

* ``RUN_DIR/run.json``: ``{"format": "posedistill-run", "version": 1, "invocations": [INVOCATION, ...]}``, one
  invocation per start of the run (the first started it, later ones resumed it).
* an evaluation JSON (``posedistill evaluate --json F``): ``{"format": "posedistill-evaluation", "version": 1,
  **settings, **metrics, "invocation": INVOCATION}`` where the settings are every option of the evaluation and
  the model meta values used (:meth:`posedistill.evaluation.EvalResult.to_dict`).

An INVOCATION is ``{"command": "posedistill train ...", "argv": [...], "cwd", "time" (UTC, ISO 8601),
"resume": bool, "versions": {"posedistill", "python", "torch", "numpy", "platform"}}``; ``command`` is None
for a library call that was not given one.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..io import atomic_write_json

__all__ = ["RUN_FILE", "software_versions", "invocation", "record_run_start", "read_run_manifest",
           "write_evaluation", "started_by"]

RUN_FILE = "run.json"
RUN_FORMAT = "posedistill-run"
EVAL_FORMAT = "posedistill-evaluation"


def software_versions() -> dict[str, str]:
    try:
        own = metadata.version("posedistill")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        own = "unknown"
    return {"posedistill": own, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "platform": platform.platform()}


def invocation(command: Sequence[str] | None, *, resume: bool = False) -> dict[str, Any]:
    """One invocation record (see the module docstring)."""
    return {"command": shlex.join(command) if command is not None else None,
            "argv": list(command) if command is not None else None, "cwd": os.getcwd(),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "resume": bool(resume),
            "versions": software_versions()}


def read_run_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    """``run_dir/run.json``, or None for a run made before manifests existed; DataError if it is malformed."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable run manifest ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT or not isinstance(data.get("invocations"), list):
        raise DataError(f"{path}: not a posedistill run manifest")
    return data


def record_run_start(run_dir: str | Path, command: Sequence[str] | None, *, resume: bool) -> dict[str, Any]:
    """Add this start of the run to ``run_dir/run.json`` (a fresh run starts a new manifest); atomic."""
    previous = read_run_manifest(run_dir) if resume else None
    manifest = previous or {"format": RUN_FORMAT, "version": 1, "invocations": []}
    manifest["invocations"].append(invocation(command, resume=resume))
    atomic_write_json(Path(run_dir) / RUN_FILE, manifest)
    return manifest


def started_by(manifest: dict[str, Any] | None) -> str | None:
    """The command that started a run (its first invocation), None when unknown."""
    if not manifest or not manifest["invocations"]:
        return None
    return manifest["invocations"][0].get("command")


def write_evaluation(path: str | Path, result: Any, command: Sequence[str] | None) -> dict[str, Any]:
    """Write an :class:`~posedistill.evaluation.EvalResult` (settings and metrics) with its invocation; atomic."""
    record = {"format": EVAL_FORMAT, "version": 1, **result.to_dict(), "invocation": invocation(command)}
    atomic_write_json(path, record)
    return record
