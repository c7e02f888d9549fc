"""int8 calibration data: real image crops made exactly as inference makes them for the same model
(:func:`posedistill.inference.network.preprocess`; used by ``posedistill export --int8``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..data.images import load_image
from ..data.records import whole_image_box
from ..errors import ConfigError
from ..models.meta import ModelMeta
from .network import preprocess
from .sources import boxes_for, check_box, collect_inputs, iter_frames, load_bbox_file

__all__ = ["calibration_batches"]


def calibration_batches(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    meta: ModelMeta,
    *,
    limit: int = 64,
    batch_size: int = 1,
    bbox_file: str | os.PathLike | None = None,
) -> list[np.ndarray]:
    """Preprocessed crops (batches of N x 3 x S x S float32) of up to ``limit`` real images for int8 calibration
    of the model of ``meta`` (its input size, box padding and normalisation).

    ``source`` is an image folder, image files or a video (its first frames); each image is cropped at the
    boxes of ``bbox_file`` or as a whole, exactly like inference does (:func:`preprocess`).
    """
    if limit < 1 or batch_size < 1:
        raise ConfigError(f"calibration limit and batch size must be >= 1, got {limit}, {batch_size}")
    sources = collect_inputs([source] if isinstance(source, (str, os.PathLike)) else source)
    boxes = load_bbox_file(bbox_file) if bbox_file is not None else None
    crops: list[np.ndarray] = []
    for src in sources:
        frames = [load_image(src.path)] if src.kind == "image" else iter_frames(src.path)
        for frame in frames:
            h, w = frame.shape[:2]
            for box in boxes_for(src, boxes, None) or [whole_image_box(w, h)]:
                crops.append(preprocess(frame, check_box(box, w, h, str(src.path)), meta)[0])
            if len(crops) >= limit:
                break
        if len(crops) >= limit:
            break
    crops = crops[:limit]
    return [np.stack(crops[i:i + batch_size]) for i in range(0, len(crops), batch_size)]
