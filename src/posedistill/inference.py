"""The public front of inference: :func:`predict_paths` (:mod:`posedistill.pipeline`) runs a :class:`Predictor`
over image files, folders and videos; the predictor (:mod:`posedistill.predictor`), input sources
and boxes (:mod:`posedistill.sources`), drawing (:mod:`posedistill.drawing`), default weights
(:mod:`posedistill.weights`) and int8 calibration (:mod:`posedistill.calibration`) are importable from here as
before.
"""

from __future__ import annotations

from .calibration import calibration_batches
from .data.records import box_to_square, whole_image_box
from .drawing import draw_pose
from .model_meta import BOX_PADDING
from .predictor import Predictor
from .sources import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Box, Source, boxes_for, check_box, check_sources,
                      collect_inputs, iter_frames, load_bbox_file, open_video, parse_bbox)
from .weights import DEFAULT_WEIGHTS_DIR, default_weights, sha256_file

# The names these helpers had when they lived here (code written against the single-module layout still runs).
# Box is re-exported for type hints.
_Source, _video, _check_sources, _boxes_for = Source, open_video, check_sources, boxes_for

__all__ = [
    "BOX_PADDING", "Box", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "Predictor", "box_to_square", "check_box",
    "draw_pose", "iter_frames", "load_bbox_file", "parse_bbox", "predict_paths", "collect_inputs",
    "default_weights", "sha256_file", "calibration_batches", "DEFAULT_WEIGHTS_DIR", "whole_image_box",
]

# predict_paths (images, folders and videos through a pipeline of threads) lives in posedistill.pipeline.
from .pipeline import predict_paths  # noqa: E402
