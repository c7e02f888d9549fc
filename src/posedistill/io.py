"""Atomic file output: every file posedistill writes appears whole or not at all (temp file + rename).

Only a regular file (or an absent path) is replaced by renaming a temporary file over it. A symlink is followed:
its target is written (atomically, the temporary file beside the target) and the link stays. A character device
(``/dev/null``, a terminal) or a FIFO is written through, in place, since renaming a file over it would replace
the device node or pipe itself; such a write cannot be atomic. Any other kind of path (a directory, a socket, a
block device) is refused with one line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["atomic_memmap", "atomic_open", "atomic_write_json", "atomic_write_text", "check_writable_dir", "output_target",
           "replace_into", "json_text"]

from .errors import PosedistillError

_NOT_FILES = ((stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"), (stat.S_ISBLK, "a block device"))


def output_target(path: str | os.PathLike) -> tuple[Path, bool]:
    """Where a write to ``path`` lands: ``(real path, write_through)``. A symlink resolves to its target;
    ``write_through`` is True for a character device or a FIFO (written in place, never renamed over). A
    directory, socket or block device raises :class:`PosedistillError` naming ``path``."""
    path = Path(path)
    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return real, False
    except OSError as exc:
        raise PosedistillError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return real, True
    for test, kind in _NOT_FILES:
        if test(mode):
            raise PosedistillError(f"{path}: is {kind}, not a file; refusing to write there")
    return real, False


def replace_into(src: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move the finished file ``src`` to ``path`` as :func:`atomic_open` would: renamed over a regular file (or
    the target of a symlink), copied into a character device or FIFO."""
    target, through = output_target(path)
    if through:
        with open(src, "rb") as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink)
        os.unlink(src)
    else:
        os.replace(src, target)


@contextlib.contextmanager
def _staged(path: Path) -> Iterator[tuple[int, str]]:
    """``(fd, name)`` of a new temporary file beside ``path`` (the usual umask-based mode), renamed over ``path``
    when the block ends, removed when it raises; the block writes, closes and fsyncs it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual umask-based mode
        yield fd, tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was. A symlink's target is
    written instead of the link; a character device or FIFO is written through in place (see the module
    docstring); a directory, socket or block device is refused.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', got {mode!r}")
    path, through = output_target(path)
    encoding = {} if "b" in mode else {"encoding": "utf-8"}
    if through:
        with open(path, mode, **encoding) as handle:
            yield handle
        return
    with _staged(path) as (fd, _):
        with os.fdopen(fd, mode, **encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_memmap(path: str | os.PathLike, dtype: str | np.dtype, shape: Sequence[int]) -> Iterator[np.ndarray]:
    """A memory-mapped ``.npy`` array of ``dtype`` and ``shape`` to fill in place (for arrays larger than memory),
    staged beside ``path`` as :func:`atomic_open` stages a file: flushed, fsynced and renamed over ``path`` when
    the block ends, removed when it raises. A device or FIFO cannot hold one: refused."""
    path, through = output_target(path)
    if through:
        raise PosedistillError(f"{path}: a memory-mapped array needs a regular file")
    with _staged(path) as (fd, tmp):
        os.close(fd)
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype), shape=tuple(shape))
        yield out
        out.flush()
        del out
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def _finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_text(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``obj``: a NaN or infinite float becomes ``null`` (never the non-standard ``NaN`` /
    ``Infinity`` that ``json.dumps`` writes by default), and ``allow_nan=False`` guards the rest."""
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as strict JSON (:func:`json_text`, indented) atomically."""
    atomic_write_text(path, json_text(obj, indent=2) + "\n")


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove it is writable by writing a probe file; clear error otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with atomic_open(path / ".write-probe", "wb") as handle:
            handle.write(b"\0" * 4096)
        (path / ".write-probe").unlink()
    except OSError as exc:
        raise PosedistillError(f"{path}: output directory is not writable ({exc.strerror or exc})") from exc
    return path
