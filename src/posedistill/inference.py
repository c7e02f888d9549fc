"""Pose inference over files: :func:`predict_paths` runs a :class:`Predictor` over image files, folders and videos.

This module is also the public front of inference: the predictor (:mod:`posedistill.predictor`), input sources
and boxes (:mod:`posedistill.sources`), drawing (:mod:`posedistill.drawing`), default weights
(:mod:`posedistill.weights`) and int8 calibration (:mod:`posedistill.calibration`) are importable from here as
before.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from .calibration import calibration_batches
from .data.images import load_image
from .data.records import box_to_square, whole_image_box
from .drawing import draw_pose
from .errors import ConfigError, DataError
from .io import atomic_write_json
from .model_meta import BOX_PADDING
from .predictor import Predictor
from .sources import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Box, Source, boxes_for, check_box, check_sources,
                      collect_inputs, iter_frames, load_bbox_file, open_video, parse_bbox)
from .weights import DEFAULT_WEIGHTS_DIR, default_weights, sha256_file

# The names these helpers had when they lived here (code written against the single-module layout still runs).
_Source, _video, _check_sources, _boxes_for = Source, open_video, check_sources, boxes_for

__all__ = [
    "BOX_PADDING", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "Predictor", "box_to_square", "check_box",
    "draw_pose", "iter_frames", "load_bbox_file", "parse_bbox", "predict_paths", "collect_inputs",
    "default_weights", "sha256_file", "calibration_batches", "DEFAULT_WEIGHTS_DIR", "whole_image_box",
]


def _draw_name(src: Source, used: set[str]) -> str:
    name = src.path.name if src.kind == "image" else src.path.stem + ".mp4"
    stem, suffix = os.path.splitext(name)
    candidate, i = name, 1
    while candidate in used:
        candidate, i = f"{stem}_{i}{suffix}", i + 1
    used.add(candidate)
    return candidate


def predict_paths(
    predictor: Predictor,
    inputs: Sequence[str | os.PathLike],
    *,
    bbox: Box | None = None,
    bbox_file: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    draw_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    progress: bool = True,
    skipped: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Run ``predictor`` over image files, folders and videos, in batches of ``batch_size`` crops.

    Returns one record per image (or video frame) and person: ``{"image": path as given, ["frame": i,]
    "bbox", "keypoints"}``. An image named explicitly that cannot be read fails the whole call before any work
    (one-line :class:`DataError`); a bad image inside a folder, or a bad frame of a video (e.g. a box outside
    it), is reported on stderr (``warning: ...``), skipped, and its message appended to ``skipped`` when a list
    is given. ``output`` (JSON) and the drawings in ``draw_dir`` are written only when the run finishes:
    drawings are staged in a hidden folder and moved into place at the end; the JSON is written atomically.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    if bbox is not None and bbox_file is not None:
        raise ConfigError("give either --bbox or --bbox-file, not both")
    sources = collect_inputs(inputs)
    boxes = load_bbox_file(bbox_file) if bbox_file is not None else None
    total = check_sources(sources)
    skipped = skipped if skipped is not None else []
    records: list[dict[str, Any]] = []
    staging: Path | None = None
    if draw_dir is not None:
        Path(draw_dir).mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".posedistill-draw-", dir=draw_dir))
    try:
        bar = tqdm(total=total, desc="predict", unit="img", disable=not progress, leave=False)
        used: set[str] = set()
        for src in sources:
            draw_path = staging / _draw_name(src, used) if staging is not None else None
            if src.kind == "image":
                try:
                    frames: Iterable[np.ndarray] = [load_image(src.path)]
                except DataError as exc:
                    if not src.in_folder:
                        raise
                    _skip(str(exc), skipped, bar)
                    continue
            else:
                frames = iter_frames(src.path)
            records += _run_source(predictor, src, frames, boxes_for(src, boxes, bbox), draw_path, batch_size,
                                   bar, skipped)
        bar.close()
        if not records and skipped:
            raise DataError(f"no image or frame could be processed ({len(skipped)} skipped; first: {skipped[0]})")
        if output is not None:
            atomic_write_json(output, records)
        if staging is not None:
            for f in sorted(staging.iterdir()):
                os.replace(f, Path(draw_dir) / f.name)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return records


def _skip(message: str, skipped: list[str] | None, bar: tqdm) -> None:
    """Report a skipped image or frame on stderr (above the progress bar) and remember it."""
    tqdm.write(f"warning: {message}; skipped", file=sys.stderr)
    bar.update()
    if skipped is not None:
        skipped.append(message)


def _run_source(predictor: Predictor, src: Source, frames: Iterable[np.ndarray], boxes: list[list[float]] | None,
                draw_path: Path | None, batch_size: int, bar: tqdm,
                skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Predict every frame of one source in batches; draw into ``draw_path`` (image or mp4) if given."""
    records: list[dict[str, Any]] = []
    writer: cv2.VideoWriter | None = None
    pending: list[tuple[int, np.ndarray, list[float], np.ndarray, np.ndarray]] = []
    video = src.kind == "video"
    fps = 25.0
    if video:
        with open_video(src.path) as (_, _, fps, _):
            pass

    def flush() -> None:
        nonlocal writer
        if not pending:
            return
        pts, scores = predictor.predict_crops(np.stack([p[3] for p in pending]), np.stack([p[4] for p in pending]))
        by_frame: dict[int, list[int]] = {}
        for i, (idx, _, box, _, _) in enumerate(pending):
            rec = {"image": str(src.path), **({"frame": idx} if video else {}),
                   **predictor.record(box, pts[i], scores[i])}
            records.append(rec)
            by_frame.setdefault(idx, []).append(i)
        for idx, members in by_frame.items():
            frame = pending[members[0]][1]
            if draw_path is not None:
                for i in members:
                    frame = draw_pose(frame, pts[i], scores[i], predictor.joints, bbox=pending[i][2])
                if video:
                    if writer is None:
                        h, w = frame.shape[:2]
                        writer = cv2.VideoWriter(str(draw_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                        if not writer.isOpened():
                            raise DataError(f"{draw_path}: cannot write annotated video")
                    writer.write(frame)
                else:
                    ok, buf = cv2.imencode(draw_path.suffix or ".png", frame)
                    if not ok:
                        raise DataError(f"{draw_path}: cannot encode drawn image")
                    draw_path.write_bytes(buf.tobytes())
            bar.update()
        pending.clear()

    try:
        for idx, frame in enumerate(frames):
            where = f"{src.path}" + (f" frame {idx}" if video else "")
            try:
                if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
                    raise DataError(f"{where}: not an H x W x 3 image")
                h, w = frame.shape[:2]
                people = [check_box(box, w, h, where) for box in boxes or [whole_image_box(w, h)]]
            except DataError as exc:
                if not (video or src.in_folder):
                    raise
                _skip(str(exc), skipped, bar)
                continue
            for box in people:
                crop, matrix = predictor.preprocess(frame, box)
                pending.append((idx, frame, box, crop, matrix))
            if len(pending) >= batch_size:
                flush()
        flush()
    finally:
        if writer is not None:
            writer.release()
    return records
