"""Image dimensions read from the file header, before any pixel is decoded.

A PNG or JPEG can declare 60,000 x 60,000 pixels in a few hundred bytes; decoding it would allocate gigabytes
(OpenCV refuses above 2^30 pixels with a long traceback). :func:`declared_size` reads the declared width and
height of PNG, JPEG, BMP, GIF and WebP headers so that callers can refuse such files with one line.
"""

from __future__ import annotations

import struct

__all__ = ["declared_size", "MAX_PIXELS"]

MAX_PIXELS = 100_000_000  # 100 megapixels: above any camera photo, far below what would exhaust memory

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _png(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in _JPEG_SOF and i + 9 <= n:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


def _bmp(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    return None


def _gif(data: bytes) -> tuple[int, int] | None:
    return struct.unpack("<HH", data[6:10]) if len(data) >= 10 else None


def _webp(data: bytes) -> tuple[int, int] | None:
    if len(data) < 30 or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


_READERS = {"png": _png, "jpeg": _jpeg, "bmp": _bmp, "gif": _gif, "webp": _webp}


def declared_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) declared by the header of an image of ``kind`` (``"png"``, ``"jpeg"``, ...); None if
    the header does not say (or the kind is not one this module reads)."""
    reader = _READERS.get(kind)
    try:
        return reader(data) if reader is not None else None
    except struct.error:
        return None
