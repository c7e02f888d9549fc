"""The single-person pose :class:`Predictor` around a checkpoint or an ONNX model.

A person is given by a box ``[x, y, w, h]`` in image pixels (default: the whole image). The network sees a
square crop centred on the box centre with side ``max(w, h) * box_padding`` (1.25), resized to the model's input
size with exactly the crop code used in training (:func:`posedistill.data.transforms.crop_person` +
:func:`~posedistill.data.transforms.normalize_image`); heatmap peaks are decoded by the model's own codec
(input size, stride and sigma from its :class:`~posedistill.models.meta.ModelMeta`) and mapped back to original
image pixels.

Backends: ``torch`` (a checkpoint, run in eager PyTorch after BN folding and with channels_last) and ``onnx``
(a file from ``posedistill export``, run by ONNX Runtime, fp32 or int8).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..codec import HeatmapCodec, crop_to_image
from ..data.records import box_to_square, whole_image_box
from ..data.transforms import crop_person, normalize_image
from ..errors import CheckpointError, ConfigError, DataError
from ..deploy.optimize import optimize_for_inference
from ..deploy.runtime import INPUT_NAME
from ..models.meta import ModelMeta
from ..models.loading import load_pose_model
from ..skeleton import JointSet, get_joint_set
from .sources import Box, check_box
from ..models.pretrained import default_weights

__all__ = ["Predictor", "preprocess"]


def preprocess(image: np.ndarray, box: Box, meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    """Normalised crop (3, S, S) and its image->crop matrix (2, 3) of one person box, as the model of ``meta``
    sees it: the box made square and padded by ``meta.box_padding``, cropped to ``meta.input_size`` with the
    training crop code, standardised by ``meta.mean`` / ``meta.std``. The predictor and the int8 calibration crops
    both make their pixels here."""
    center, side = box_to_square(box, meta.box_padding)
    crop, matrix = crop_person(image, center, side, 0.0, meta.input_size)
    return normalize_image(crop, mean=meta.mean, std=meta.std), matrix


@dataclass
class Predictor:
    """Single-person pose estimator around a checkpoint (``backend="torch"``) or an ONNX model (``"onnx"``).

    Example::

        p = Predictor("student.pt")                       # or Predictor("student_int8.onnx", backend="onnx")
        people = p.predict(cv2.imread("a.jpg"), boxes=[[x, y, w, h]])
        people[0]["keypoints"][0]  # {"name": "right_ankle", "x": ..., "y": ..., "score": ...}

    Args:
        weights: checkpoint (``.pt``) or ONNX file; None: the package default
            (:func:`~posedistill.models.pretrained.default_weights` of ``weights_dir``).
        backend: ``"torch"`` or ``"onnx"`` (default: from the file suffix, ``.onnx`` -> onnx).
        joint_set: expected joint set; weights for another set raise :class:`CheckpointError`.
        threads: intra-op threads (None: library default).
        dark: DARK sub-pixel decoding (True) or the quarter-pixel shift (False); None: the model meta's choice.
        channels_last: channels_last memory format in the torch backend (faster on CPU).
        weights_dir: where the default weights are looked up when ``weights`` is None (default: the package's).
    """

    weights: str | os.PathLike | None = None
    backend: str | None = None
    joint_set: str | None = None
    threads: int | None = None
    dark: bool | None = None
    channels_last: bool = True
    weights_dir: str | os.PathLike | None = None
    input_size: int = field(init=False)
    joints: JointSet = field(init=False)
    meta: ModelMeta = field(init=False)
    quantized: bool = field(init=False)  # an int8 ONNX model
    codec: HeatmapCodec = field(init=False, repr=False)
    _model: Any = field(init=False, repr=False)
    _session: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        path = Path(self.weights) if self.weights is not None else default_weights(self.weights_dir)
        self.weights = path
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        loaded = load_pose_model(path, backend=self.backend, threads=self.threads)
        self.backend = loaded.backend
        self.quantized = loaded.quantized
        self._model = self._session = None
        if loaded.module is not None:
            self._model = optimize_for_inference(loaded.module, channels_last=self.channels_last)
        else:
            self._session = loaded.session
        self.meta = loaded.meta.with_decode(self.dark)
        self.joints = self.meta.joints
        if self.joint_set is not None and get_joint_set(self.joint_set).names != self.joints.names:
            raise CheckpointError(f"{path}: weights are for joint set {self.joints.name!r}, expected "
                                  f"{get_joint_set(self.joint_set).name!r}")
        self.input_size = self.meta.input_size
        self.codec = self.meta.codec()

    # -- core
    def heatmaps(self, batch: np.ndarray) -> np.ndarray:
        """Last-stack heatmaps (N, K, h, w) float32 of normalised crops (N, 3, S, S)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._session is not None:
            return self._session.run(None, {INPUT_NAME: batch})[0]
        x = torch.from_numpy(batch)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        threads = self.threads
        old = torch.get_num_threads()
        try:
            if threads is not None:
                torch.set_num_threads(threads)
            with torch.inference_mode():
                return self._model(x)[-1].float().contiguous().numpy()
        finally:
            if threads is not None:
                torch.set_num_threads(old)

    def preprocess(self, image: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
        """Normalised crop (3, S, S) and its image->crop matrix (2, 3) for one person box (:func:`preprocess`)."""
        return preprocess(image, box, self.meta)

    def predict_crops(self, crops: np.ndarray, matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K, 2) in image pixels and scores (N, K) for preprocessed crops and their matrices."""
        return self.decode_heatmaps(self.heatmaps(crops), matrices)

    def decode_heatmaps(self, heatmaps: np.ndarray, matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K, 2) in image pixels and scores (N, K) from :meth:`heatmaps` output, by the model's own
        codec (its sigma and decode method) and the crops' image->crop matrices."""
        coords, scores = self.codec.decode(heatmaps, dark=self.meta.decode == "dark")
        return crop_to_image(coords, matrices), scores

    def record(self, box: Box, keypoints: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
        """One JSON-ready person: ``{"bbox", "keypoints": [{"name", "x", "y", "score"}]}``."""
        return {
            "bbox": [float(v) for v in box],
            "keypoints": [
                {"name": n, "x": float(p[0]), "y": float(p[1]), "score": float(s)}
                for n, p, s in zip(self.joints.names, keypoints, scores)
            ],
        }

    def predict(self, image: np.ndarray, boxes: Sequence[Box] | None = None, *,
                where: str = "image") -> list[dict[str, Any]]:
        """Pose of each person box in one BGR uint8 image (default box: the whole image)."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise DataError(f"{where}: expected an H x W x 3 BGR image")
        h, w = image.shape[:2]
        boxes = [check_box(b, w, h, where) for b in (boxes or [whole_image_box(w, h)])]
        crops, mats = zip(*(self.preprocess(image, b) for b in boxes))
        pts, scores = self.predict_crops(np.stack(crops), np.stack(mats))
        return [self.record(b, p, s) for b, p, s in zip(boxes, pts, scores)]
