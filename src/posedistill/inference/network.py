"""The pose network of inference and evaluation: :class:`PoseNetwork`, its crop (:func:`preprocess`) and the one
test-time averaging (flip and scales, :func:`predict_heatmaps`).

A person is given by a box ``[x, y, w, h]`` in image pixels. The network sees a square crop centred on the box
centre with side ``max(w, h) * box_padding`` (1.25), resized to the model's input size with exactly the crop code
used in training (:func:`posedistill.data.transforms.crop_person` +
:func:`~posedistill.data.transforms.normalize_image`); heatmap peaks are decoded by the model's own codec (input
size, stride and sigma from its :class:`~posedistill.models.meta.ModelMeta`) and mapped back to image pixels.

Backends: ``torch`` (a checkpoint, run in eager PyTorch after BN folding, channels_last) and ``onnx`` (a file from
``posedistill export``, fp32 or int8, run by ONNX Runtime through
:class:`~posedistill.models.loading.OnnxHeatmaps`). Both go through one forward callable, so flip and multi-scale
averaging are the same code for both, and for the in-memory module that the training loop validates.

Flip test averages the heatmaps of the crop and of its mirror image (flipped back, left/right channels swapped).
posedistill's coordinate convention (pixel centres at integers, ``x_heatmap = (x + 0.5) / 4 - 0.5``, see
:mod:`posedistill.codec`) makes the mirrored heatmap align exactly, so the one-pixel shift that codes using
``x_heatmap = x / 4`` need is not applied (it would add a bias of one heatmap pixel here). Multi-scale test
resamples the crop at several scales, maps each scale's heatmaps back onto the base crop and averages them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..codec import HeatmapCodec, crop_to_image
from ..data.records import box_to_square
from ..data.transforms import crop_person, normalize_image
from ..deploy.optimize import optimize_for_inference
from ..errors import CheckpointError, ConfigError
from ..models.loading import load_pose_model
from ..models.meta import ModelMeta
from ..models.pretrained import default_weights
from ..skeleton import JointSet, get_joint_set

__all__ = ["preprocess", "flip_heatmaps", "predict_heatmaps", "torch_threads", "PoseNetwork"]

#: a network's forward: images (N, 3, S, S) -> the heatmaps of each stack (the last one is used)
Forward = Callable[[Tensor], Sequence[Tensor]]


def preprocess(image: np.ndarray, box: Sequence[float], meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    """Normalised crop (3, S, S) and its image->crop matrix (2, 3) of one person box, as the model of ``meta``
    sees it: the box made square and padded by ``meta.box_padding``, cropped to ``meta.input_size`` with the
    training crop code, standardised by ``meta.mean`` / ``meta.std``. Inference and the int8 calibration crops
    both make their pixels here."""
    center, side = box_to_square(box, meta.box_padding)
    crop, matrix = crop_person(image, center, side, 0.0, meta.input_size)
    return normalize_image(crop, mean=meta.mean, std=meta.std), matrix


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch's intra-op threads set to ``threads`` for the duration of the block (None: unchanged)."""
    if threads is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def flip_heatmaps(heatmaps: Tensor, flip_index: Sequence[int]) -> Tensor:
    """Mirror N x K x H x W heatmaps horizontally and swap left/right channels."""
    return heatmaps.flip(-1)[:, list(flip_index)]


def _resample(x: Tensor, zoom: float) -> Tensor:
    """Resample ``x`` so that it shows a region ``zoom`` times as large around the same centre."""
    n = x.shape[0]
    theta = torch.tensor([[zoom, 0.0, 0.0], [0.0, zoom, 0.0]], dtype=x.dtype, device=x.device).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.inference_mode()
def predict_heatmaps(forward: Forward, images: Tensor, *, flip_index: Sequence[int] | None = None,
                     scales: Sequence[float] = (1.0,)) -> Tensor:
    """Final-stack heatmaps (float32) of ``images`` (N x 3 x H x W) by ``forward`` (a module returning its stacks),
    averaged over flip (when ``flip_index`` is given) and over ``scales`` (1.0 = the crop as it is; 1.2 = a region
    1.2x as large). The network, evaluation and the FPD teacher all average here."""
    total = None
    for s in scales:
        x = images if s == 1.0 else _resample(images, s)
        hm = forward(x)[-1].float()
        if flip_index is not None:
            hm = torch.stack([hm, flip_heatmaps(forward(x.flip(-1))[-1].float(), flip_index)]).mean(0)
        if s != 1.0:
            hm = _resample(hm, 1.0 / s)
        total = hm if total is None else total + hm
    if total is None:
        raise ConfigError("test-time scales must not be empty")
    return total if len(scales) == 1 else total / len(scales)


class PoseNetwork:
    """A pose model ready for inference: crops -> heatmaps (optionally flip / multi-scale averaged) -> keypoints in
    image pixels.

    Build it from a file with :meth:`load` (checkpoint or ONNX model, BN folded, channels_last), or around an
    in-memory module with the constructor (the training loop's validation: the module as it is).

    Example::

        net = PoseNetwork.load("student.pt")                      # or "student_int8.onnx"
        crop, matrix = net.preprocess(image, [x, y, w, h])
        keypoints, scores = net.estimate(crop[None], matrix[None], flip=True)

    Args:
        module: the forward callable: a torch module returning its stacks' heatmaps, or
            :class:`~posedistill.models.loading.OnnxHeatmaps` around an ONNX Runtime session.
        meta: the model's record (input size, stride, sigma, decode method, normalisation, joint set).
        weights: the file it was loaded from (None for an in-memory module).
        backend: ``"torch"`` or ``"onnx"``.
        quantized: an int8 ONNX model.
        threads: intra-op threads of PyTorch during a call (None: library default; ONNX Runtime's are set when its
            session is made, by :meth:`load`).
        device: where the torch module runs (an ONNX model runs on the CPU).
        channels_last: pass inputs in ``torch.channels_last`` memory format (the fast CPU path of a module
            converted by :func:`~posedistill.deploy.optimize.optimize_for_inference`).
    """

    def __init__(self, module: nn.Module, meta: ModelMeta, *, weights: Path | None = None, backend: str = "torch",
                 quantized: bool = False, threads: int | None = None, device: str | torch.device = "cpu",
                 channels_last: bool = False) -> None:
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        self.module = module.eval()
        self.meta = meta
        self.weights, self.backend, self.quantized = weights, backend, quantized
        self.threads, self.device, self.channels_last = threads, torch.device(device), channels_last
        if backend == "onnx" and self.device.type != "cpu":
            raise ConfigError(f"{weights}: an ONNX model runs on the CPU (ONNX Runtime); device must be 'cpu', "
                              f"got {device!r}")
        self.codec: HeatmapCodec = meta.codec()

    @classmethod
    def load(cls, weights: str | os.PathLike | None = None, *, model: str | None = None, backend: str | None = None,
             threads: int | None = None, dark: bool | None = None, joint_set: str | None = None,
             weights_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
             channels_last: bool = True) -> PoseNetwork:
        """The network of a checkpoint (``.pt``) or ONNX model (``.onnx``) by
        :func:`~posedistill.models.loading.load_pose_model`.

        Args:
            weights: the file; None: the shipped student named ``model``
                (:func:`~posedistill.models.pretrained.default_weights` of ``weights_dir``).
            model: a shipped student's name (``"tiny"``, ``"base"``; None: the manifest's default); only without
                ``weights``.
            backend: ``"torch"`` or ``"onnx"`` (default: from the file suffix, ``.onnx`` -> onnx; a shipped student
                runs as its ONNX export unless ``"torch"`` asks for its checkpoint).
            threads: intra-op threads (None: library default).
            dark: DARK sub-pixel decoding (True) or the quarter-pixel shift (False); None: the model meta's choice.
            joint_set: expected joint set; weights for another set raise :class:`CheckpointError`.
            weights_dir: where the default weights are looked up when ``weights`` is None (default: the package's).
            device: where a checkpoint's module runs.
            channels_last: channels_last memory format in the torch backend (faster on CPU).
        """
        if weights is not None and model is not None:
            raise ConfigError("give either weights (a file) or model (a shipped student's name), not both")
        path = Path(weights) if weights is not None else default_weights(weights_dir, model=model, backend=backend)
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        loaded = load_pose_model(path, backend=backend, threads=threads)
        meta = loaded.meta.with_decode(dark)
        if joint_set is not None and get_joint_set(joint_set).names != meta.joints.names:
            raise CheckpointError(f"{path}: weights are for joint set {meta.joints.name!r}, expected "
                                  f"{get_joint_set(joint_set).name!r}")
        if loaded.module is not None:
            module = optimize_for_inference(loaded.module, channels_last=channels_last).to(device)
        else:
            module, channels_last = loaded.as_module(), False
        return cls(module, meta, weights=path, backend=loaded.backend, quantized=loaded.quantized, threads=threads,
                   device=device, channels_last=channels_last)

    @property
    def joints(self) -> JointSet:
        return self.meta.joints

    @property
    def input_size(self) -> int:
        return self.meta.input_size

    def __repr__(self) -> str:
        return (f"PoseNetwork(weights={self.weights}, backend={self.backend!r}, arch={self.meta.arch!r}, "
                f"input_size={self.input_size}, device={str(self.device)!r})")

    def preprocess(self, image: np.ndarray, box: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Normalised crop (3, S, S) and its image->crop matrix (2, 3) for one person box (:func:`preprocess`)."""
        return preprocess(image, box, self.meta)

    def _forward(self, x: Tensor) -> Sequence[Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.module(x)

    def heatmaps(self, batch: np.ndarray | Tensor, *, flip: bool = False,
                 scales: Sequence[float] = (1.0,)) -> np.ndarray:
        """Last-stack heatmaps (N, K, h, w) float32 of normalised crops (N, 3, S, S), averaged with their mirror
        images (``flip``) and over ``scales`` (:func:`predict_heatmaps`)."""
        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        x = batch.to(self.device, torch.float32)
        with torch_threads(self.threads):
            hm = predict_heatmaps(self._forward, x, flip_index=self.joints.flip_index if flip else None,
                                  scales=scales)
            return hm.contiguous().cpu().numpy()

    def decode_heatmaps(self, heatmaps: np.ndarray, matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K, 2) in image pixels and scores (N, K) from :meth:`heatmaps` output, by the model's own
        codec (its sigma and decode method) and the crops' image->crop matrices."""
        coords, scores = self.codec.decode(heatmaps, dark=self.meta.decode == "dark")
        return crop_to_image(coords, np.asarray(matrices)), scores

    def estimate(self, crops: np.ndarray | Tensor, matrices: np.ndarray, *, flip: bool = False,
                 scales: Sequence[float] = (1.0,)) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K, 2) in image pixels and scores (N, K) of preprocessed crops and their matrices."""
        return self.decode_heatmaps(self.heatmaps(crops, flip=flip, scales=scales), matrices)
