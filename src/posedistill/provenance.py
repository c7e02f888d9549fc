"""Where a result came from: the command line that made it and the software versions, recorded in every run's
``run.json`` (:mod:`posedistill.training.run_dir`) and every evaluation JSON (:func:`posedistill.evaluation.
write_evaluation`), so ``posedistill report`` quotes commands instead of rebuilding them from flag names.

An INVOCATION is ``{"command": "posedistill train ...", "argv": [...], "cwd", "time" (UTC, ISO 8601),
"resume": bool, "versions": {"posedistill", "python", "torch", "numpy", "platform"}}``; ``command`` is None
for a library call that was not given one.
"""

from __future__ import annotations

import os
import platform
import shlex
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

import numpy as np
import torch

__all__ = ["software_versions", "invocation"]


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
