"""Image file checks and decoding with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError
from .image_header import MAX_PIXELS, declared_size

__all__ = ["check_image_file", "load_image", "decode_image_bytes", "reduced_decode_plan", "decode_image_reduced"]

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"BM", "bmp"), (b"GIF8", "gif"),
    (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"RIFF", "webp"),
)


_HEAD_BYTES = 65536  # a JPEG's frame header (its size) can follow up to 64 KiB of EXIF data


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


def _header_problem(head: bytes, tail: bytes, size: int, max_pixels: int) -> str | None:
    """:func:`_problem`, then the pixel count the header declares against ``max_pixels``."""
    problem = _problem(head, tail, size)
    if problem:
        return problem
    dims = declared_size(head, _kind(head) or "")
    if dims is not None and dims[0] * dims[1] > max_pixels:
        return (f"image declares {dims[0]} x {dims[1]} pixels, more than the limit of {max_pixels / 1e6:g} "
                "megapixels")
    return None


def check_image_file(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> str | None:
    """Cheap check (reads 66 KiB at most): ``None`` when the file looks like a complete image, else the reason.

    Detects a missing or empty file, an unrecognised header, a truncated JPEG/PNG and a header declaring more than
    ``max_pixels`` pixels. A file that passes can still fail to decode; :func:`load_image` reports that.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
            fh.seek(max(0, size - 2048))
            tail = fh.read(2048)
    except FileNotFoundError:
        return "image file not found"
    except OSError as exc:
        return f"cannot read image file ({exc.strerror or exc})"
    return _header_problem(head, tail, size, max_pixels)


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file as BGR uint8 (H, W, 3); raises DataError naming the file and the problem."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{p}: image file not found") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read image file ({exc.strerror or exc})") from None
    return decode_image_bytes(data, str(p))


def decode_image_bytes(data: bytes, where: str = "image", *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, ...) held in memory as BGR uint8 (H, W, 3).

    Raises DataError naming ``where`` for an empty, unrecognised or truncated file, one whose header declares
    more than ``max_pixels`` pixels (checked before decoding, so nothing large is allocated) and one that
    OpenCV cannot decode.
    """
    return _decode(data, where, max_pixels, cv2.IMREAD_COLOR)


def _decode(data: bytes, where: str, max_pixels: int, flags: int) -> np.ndarray:
    problem = _header_problem(data[:_HEAD_BYTES], data[-2048:], len(data), max_pixels)
    if problem:
        raise DataError(f"{where}: {problem}")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise DataError(f"{where}: cannot decode image")
    return image


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


def reduced_decode_plan(data: bytes, where: str = "image", *, max_side: int,
                        max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """``(factor, peak pixels)`` of decoding ``data`` with :func:`decode_image_reduced`: the smallest of 1, 2, 4, 8
    that brings the declared long side to ``max_side`` or under (keeping the short side >= 1 pixel), and the most
    pixels the decoder holds at once (libjpeg decodes a JPEG at the reduced size; other formats are decoded whole,
    then reduced by OpenCV). An image whose header does not tell its size counts as ``max_pixels``. Raises
    DataError naming ``where`` for what :func:`decode_image_bytes` refuses from the header alone."""
    problem = _header_problem(data[:_HEAD_BYTES], data[-2048:], len(data), max_pixels)
    if problem:
        raise DataError(f"{where}: {problem}")
    kind = _kind(data[:16])
    dims = declared_size(data[:_HEAD_BYTES], kind or "")
    if not dims or min(dims) < 1:
        return 1, max_pixels
    factor = next((f for f in _REDUCED if max(dims) <= max_side * f), 8)
    while factor > 1 and min(dims) < factor:
        factor //= 2
    reduced = -(-dims[0] // factor) * -(-dims[1] // factor)
    return factor, reduced if kind == "jpeg" else dims[0] * dims[1]


def decode_image_reduced(data: bytes, where: str = "image", *, max_side: int,
                         max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, tuple[float, float]]:
    """Decode like :func:`decode_image_bytes`, at most ``max_side`` pixels on the long side: reduced while
    decoding (``cv2.IMREAD_REDUCED_COLOR_2/4/8``, by the factor of :func:`reduced_decode_plan`), then shrunk
    (INTER_AREA) if still larger. Returns the image and ``(sx, sy)``, its size over the original's per axis (the
    original oriented as decoded, EXIF rotation included): original pixel ``x`` is ``(x + 0.5) * sx - 0.5`` in it."""
    factor, _ = reduced_decode_plan(data, where, max_side=max_side, max_pixels=max_pixels)
    image = _decode(data, where, max_pixels, _REDUCED[factor])
    h, w = image.shape[:2]
    dims = declared_size(data[:_HEAD_BYTES], _kind(data[:16]) or "")
    if dims:  # EXIF orientation may have turned the image: the declared sides in the order that fits best
        ow, oh = dims if abs(w * dims[1] - h * dims[0]) <= abs(w * dims[0] - h * dims[1]) else dims[::-1]
    else:
        ow, oh = w, h
    if max(h, w) > max_side:
        shrink = max_side / max(h, w)
        image = cv2.resize(image, (max(1, round(w * shrink)), max(1, round(h * shrink))),
                           interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
    return image, (w / ow, h / oh)
