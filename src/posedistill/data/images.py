"""Image file checks and decoding with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError

__all__ = ["check_image_file", "load_image"]

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"BM", "bmp"), (b"GIF8", "gif"),
    (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"RIFF", "webp"),
)


def _kind(head: bytes) -> str | None:
    return next((k for sig, k in _SIGNATURES if head.startswith(sig)), None)


def _problem(head: bytes, tail: bytes, size: int) -> str | None:
    if size == 0:
        return "empty file"
    kind = _kind(head)
    if kind is None:
        return "not a recognised image format (unreadable or corrupt header)"
    if kind == "jpeg" and b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)"
    if kind == "png" and b"IEND" not in tail:
        return "truncated PNG (no IEND chunk)"
    return None


def check_image_file(path: str | Path) -> str | None:
    """Cheap check (reads 4 KiB at most): ``None`` when the file looks like a complete image, else the reason.

    Detects a missing or empty file, an unrecognised header and a truncated JPEG/PNG. A file that passes can still
    fail to decode; :func:`load_image` reports that.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            head = fh.read(16)
            fh.seek(max(0, size - 2048))
            tail = fh.read(2048)
    except FileNotFoundError:
        return "image file not found"
    except OSError as exc:
        return f"cannot read image file ({exc.strerror or exc})"
    return _problem(head, tail, size)


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file as BGR uint8 (H, W, 3); raises DataError naming the file and the problem."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{p}: image file not found") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read image file ({exc.strerror or exc})") from None
    problem = _problem(data[:16], data[-2048:], len(data))
    if problem:
        raise DataError(f"{p}: {problem}")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise DataError(f"{p}: cannot decode image")
    return image
