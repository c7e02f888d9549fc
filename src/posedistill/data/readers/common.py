"""What every dataset reader shares: the bad-annotation policy, JSON and array checks, the default box padding."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from ...errors import DataError

__all__ = ["BadPeople", "load_json", "as_array", "find_json"]


class BadPeople:
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


def load_json(path: Path):
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def as_array(value, shape_tail: tuple[int, ...]) -> np.ndarray | None:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return a if a.ndim == len(shape_tail) + 1 and a.shape[1:] == shape_tail else None



def find_json(path: Path, kind: str) -> Path:
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) != 1:
            raise DataError(f"{path}: expected one .json annotation file for {kind}, found {len(found)}")
        return found[0]
    return path


