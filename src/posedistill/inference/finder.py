"""Finding people's boxes on a whole photo with the person finder (:mod:`posedistill.models.finder`).

:class:`Finder` letterboxes each photo to the finder's input, runs the network (ONNX Runtime on the shipped
``.onnx``, or eager PyTorch on a checkpoint) on all photos of a call in one batch and returns each photo's people
as (score, box ``[x, y, w, h]`` in the photo's pixels), best first. The boxes are the extent of the person's
joints as the finder sees them; :class:`~posedistill.inference.localize.Localizer` (``method="finder"``) widens
them, runs the pose network in them and refines the box on the pose's own joints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..deploy.optimize import optimize_for_inference
from ..deploy.runtime import INPUT_NAME, load_onnx_session
from ..errors import CheckpointError, ConfigError, DataError
from ..data.transforms import letterbox, normalize_image
from ..models.finder import FILL_BGR, decode_people, finder_from_checkpoint
from ..models.meta import IMAGE_MEAN, IMAGE_STD
from ..models.loading import backend_for
from ..models.pretrained import default_weights, read_manifest
from .network import torch_threads

__all__ = ["Finder", "finder_input"]


def finder_input(image: np.ndarray, size: int) -> tuple[np.ndarray, float, np.ndarray]:
    """A BGR photo as the finder sees it: letterboxed to ``size`` on :data:`~posedistill.models.finder.FILL_BGR` and
    normalised like the pose models, (3, S, S) float32; with the letterbox's scale and offset (canvas point = image
    point * scale + offset). Inference and the finder's validation during training both make it here."""
    canvas, scale, offset = letterbox(image, size, FILL_BGR)
    return normalize_image(canvas, mean=IMAGE_MEAN, std=IMAGE_STD), scale, offset


class Finder:
    """Photo -> people boxes.

    Example::

        finder = Finder.shipped()                      # the package's finder (None if none is shipped)
        [(score, box)] = finder(cv2.imread("photo.jpg"))

    Args:
        weights: a finder checkpoint (``.pt``) or its ONNX export.
        backend: ``"torch"`` or ``"onnx"`` (default: from the suffix).
        threads: intra-op threads (None: the library's default).
    """

    def __init__(self, weights: str | os.PathLike, *, backend: str | None = None, threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        self.weights = Path(weights)
        self.backend = backend_for(self.weights, backend)
        self.threads = threads
        if self.backend == "onnx":
            self.session = load_onnx_session(self.weights, threads=threads)
            shape = self.session.get_inputs()[0].shape
            if len(shape) != 4 or not isinstance(shape[2], int) or shape[2] != shape[3]:
                raise CheckpointError(f"{self.weights}: not a person-finder ONNX model (input shape {shape})")
            self.input_size, self.module = int(shape[2]), None
        else:
            model = finder_from_checkpoint(self.weights)
            self.input_size, self.session = model.input_size, None
            self.module = optimize_for_inference(model, channels_last=True)

    @classmethod
    def shipped(cls, weights_dir: str | os.PathLike | None = None, *, backend: str | None = None,
                threads: int | None = None) -> Finder | None:
        """The finder the package ships (its ONNX export unless ``backend="torch"``), verified by sha256; None when
        the manifest of ``weights_dir`` names none (a corrupt or missing named file raises)."""
        try:
            info = read_manifest(weights_dir)
        except CheckpointError:
            return None
        if not isinstance(info.get("finder"), dict):
            return None
        return cls(default_weights(weights_dir, role="finder", backend=backend), backend=backend, threads=threads)

    def __repr__(self) -> str:
        return f"Finder({self.weights.name!r}, backend={self.backend!r}, input_size={self.input_size})"

    def raw(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[float], list[np.ndarray]]:
        """The network's output (N, 5, h, w) for BGR ``images`` and each letterbox's scale and offset."""
        canvases, scales, offsets = [], [], []
        for i, image in enumerate(images):
            if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
                raise DataError(f"image {i}: expected an H x W x 3 BGR image")
            canvas, scale, offset = finder_input(image, self.input_size)
            canvases.append(canvas)
            scales.append(scale)
            offsets.append(offset)
        batch = np.stack(canvases).astype(np.float32, copy=False)
        if self.session is not None:
            return self.session.run(None, {INPUT_NAME: batch})[0], scales, offsets
        with torch.inference_mode(), torch_threads(self.threads):
            x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
            return self.module(x).float().numpy(), scales, offsets

    def find_many(self, images: Sequence[np.ndarray], *, top_k: int = 1) -> list[list[tuple[float, list[float]]]]:
        """Per BGR image: up to ``top_k`` (score, box ``[x, y, w, h]`` in image pixels), best first. The best peak is
        always returned; further ones only where the centre map has a local maximum above zero."""
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        if not images:
            return []
        out, scales, offsets = self.raw(images)
        found = decode_people(out, top_k=top_k, input_size=self.input_size)
        return [[(s, [float((b[0] - off[0]) / sc), float((b[1] - off[1]) / sc), float(b[2] / sc),
                      float(b[3] / sc)]) for k, (s, b) in enumerate(people) if k == 0 or s > 0]
                for people, sc, off in zip(found, scales, offsets)]

    def __call__(self, image: np.ndarray, *, top_k: int = 1) -> list[tuple[float, list[float]]]:
        """:meth:`find_many` of one BGR image."""
        return self.find_many([image], top_k=top_k)[0]

