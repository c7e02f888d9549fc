"""Where inference input comes from: image files, folders and videos, and person boxes (``--bbox``, box files).

A person box is ``[x, y, w, h]`` in image pixels (the convention of :func:`posedistill.data.box_to_square`);
without one the whole image is the box.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data.images import check_image_file
from ..errors import ConfigError, DataError

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "Box", "Source", "parse_bbox", "load_bbox_file", "check_box",
           "collect_inputs", "open_video", "iter_frames", "check_sources", "boxes_for"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
Box = Sequence[float]


def parse_bbox(text: str) -> list[float]:
    """``"x,y,w,h"`` -> ``[x, y, w, h]``; ConfigError on anything else."""
    try:
        box = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or not all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise ConfigError(f"--bbox must be x,y,w,h with w, h > 0, got {text!r}")
    return box


def _as_boxes(value: Any, where: str) -> list[list[float]]:
    boxes = value if value and isinstance(value[0], (list, tuple)) else [value]
    out = []
    for box in boxes:
        if (not isinstance(box, (list, tuple)) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise DataError(f"{where}: a box must be [x, y, w, h], got {box!r}")
        out.append([float(v) for v in box])
    return out


def load_bbox_file(path: str | os.PathLike) -> dict[str, list[list[float]]]:
    """Read a JSON object mapping image file names to one box ``[x, y, w, h]`` or a list of boxes."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: box file not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable JSON box file ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: box file must be a JSON object {{image name: [x, y, w, h] or [[...], ...]}}")
    return {str(k): _as_boxes(v, f"{path}: {k}") for k, v in data.items()}


def check_box(box: Box, width: int, height: int, where: str) -> list[float]:
    """Validate a box against an image of ``width`` x ``height``; DataError naming ``where`` if it is unusable:
    not finite, empty, outside the image, or reaching more than the image's own size beyond its edges (a box of
    1e300 would make a crop of no pixels and NaN keypoints)."""
    x, y, w, h = (float(v) for v in box)
    if not (np.isfinite([x, y, w, h, x + w, y + h]).all() and w > 0 and h > 0):
        raise DataError(f"{where}: box {list(box)} must have finite x, y and w, h > 0")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise DataError(f"{where}: box {[x, y, w, h]} lies outside the {width}x{height} image")
    if x < -width or y < -height or x + w > 2 * width or y + h > 2 * height:
        raise DataError(f"{where}: box {[x, y, w, h]} reaches more than the image's size beyond the edges of the "
                        f"{width}x{height} image")
    return [x, y, w, h]


@dataclass(frozen=True)
class Source:
    """One input: an image file or a video, as given or found in a folder."""

    path: Path  # as given (for the "image" field)
    kind: str  # "image" | "video"
    in_folder: bool = False  # found by listing a folder: a bad one is reported and skipped, not fatal


def collect_inputs(inputs: Iterable[str | os.PathLike]) -> list[Source]:
    """Expand image files, folders (their images, sorted, not recursive) and video files into sources."""
    sources: list[Source] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(f"{p}: folder contains no images ({', '.join(IMAGE_EXTENSIONS)})")
            sources += [Source(q, "image", in_folder=True) for q in found]
        elif not p.exists():
            raise DataError(f"{p}: input not found")
        elif p.suffix.lower() in VIDEO_EXTENSIONS:
            sources.append(Source(p, "video"))
        else:
            sources.append(Source(p, "image"))
    if not sources:
        raise DataError("no input images or videos given")
    return sources


@contextlib.contextmanager
def open_video(path: Path) -> Iterator[tuple[cv2.VideoCapture, int, float, tuple[int, int]]]:
    """An opened video with its frame count, frame rate (25 when unknown) and size; released on exit."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"{path}: cannot open video (unreadable or unsupported format)")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        yield cap, n, fps, size
    finally:
        cap.release()


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """BGR frames of a video; DataError when it cannot be opened or has no decodable frame."""
    path = Path(path)
    with open_video(path) as (cap, _, _, _):
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield frame
    if count == 0:
        raise DataError(f"{path}: video has no decodable frames")


def check_sources(sources: Sequence[Source]) -> int:
    """Fail fast (before any output) on unreadable inputs; returns the expected number of images/frames."""
    total = 0
    for src in sources:
        if src.kind == "image":
            problem = check_image_file(src.path)
            if problem and not src.in_folder:
                raise DataError(f"{src.path}: {problem}")
            total += 1
        else:
            with open_video(src.path) as (cap, n, _, _):
                ok, _frame = cap.read()
                if not ok:
                    raise DataError(f"{src.path}: video has no decodable frames")
                total += max(n, 1)
    return total


def boxes_for(src: Source, boxes: dict[str, list[list[float]]] | None,
              bbox: Box | None) -> list[list[float]] | None:
    """The person boxes of a source: ``bbox`` for all, else its entry (full path or file name) in ``boxes``."""
    if bbox is not None:
        return [list(bbox)]
    if boxes:
        for key in (str(src.path), src.path.name):
            if key in boxes:
                return boxes[key]
    return None
