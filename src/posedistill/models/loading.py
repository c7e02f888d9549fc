"""One loader for a trained pose model: a checkpoint (``.pt``) or an exported ONNX file, with its meta record.

:func:`load_pose_model` is what :class:`~posedistill.inference.network.PoseNetwork` (inference and evaluation),
export, the FPD teacher and ``bench`` use, so all of them decode with the sigma, stride and input size the model
was trained with (:mod:`posedistill.models.meta`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import model_from_checkpoint
from ..errors import CheckpointError, ConfigError
from ..deploy.runtime import INPUT_NAME, load_onnx_session, onnx_is_quantized, onnx_metadata
from .meta import ModelMeta, meta_from_checkpoint, meta_from_onnx

__all__ = ["PoseModel", "load_pose_model", "OnnxHeatmaps", "BACKENDS"]

BACKENDS = ("torch", "onnx")


@dataclass
class PoseModel:
    """A loaded model and its meta record: ``module`` (torch, eval mode) or ``session`` (ONNX Runtime);
    ``quantized``: an int8 ONNX model."""

    path: Path
    backend: str
    meta: ModelMeta
    module: nn.Module | None = None
    session: Any = None
    checkpoint: dict[str, Any] | None = None
    quantized: bool = False

    def as_module(self) -> nn.Module:
        """A module whose forward returns ``[heatmaps]`` for either backend (ONNX through :class:`OnnxHeatmaps`)."""
        return self.module if self.module is not None else OnnxHeatmaps(self.session)


class OnnxHeatmaps(nn.Module):
    """Adapter: an ONNX Runtime session as a module returning ``[last-stack heatmaps]``, the one way inference and
    evaluation run an ONNX model (:class:`~posedistill.inference.network.PoseNetwork`)."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        batch = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return [torch.from_numpy(self.session.run(None, {INPUT_NAME: batch})[0])]


def backend_for(path: Path, backend: str | None) -> str:
    """``backend`` checked, or the one the file suffix implies (``.onnx`` -> onnx, else torch)."""
    chosen = backend or ("onnx" if path.suffix.lower() == ".onnx" else "torch")
    if chosen not in BACKENDS:
        raise ConfigError(f"backend must be 'torch' or 'onnx', got {chosen!r}")
    if chosen == "torch" and path.suffix.lower() == ".onnx":
        raise CheckpointError(f"{path}: an ONNX model needs --backend onnx")
    return chosen


def load_pose_model(path: str | os.PathLike, *, backend: str | None = None, threads: int | None = None,
                    spin: bool = True, map_location: str | torch.device = "cpu") -> PoseModel:
    """Load a checkpoint or an ONNX model and its :class:`~posedistill.models.meta.ModelMeta`.

    ``backend``: ``"torch"`` or ``"onnx"`` (default: from the suffix). ``threads``, ``spin``: ONNX Runtime intra-op
    threads and whether idle ones busy-wait (:func:`posedistill.deploy.runtime.load_onnx_session`).
    Any unusable file raises a one-line :class:`CheckpointError` naming it.
    """
    path = Path(path)
    chosen = backend_for(path, backend)
    if chosen == "torch":
        module, ckpt = model_from_checkpoint(path, map_location=map_location)
        return PoseModel(path, chosen, meta_from_checkpoint(ckpt, module, where=str(path)), module=module,
                         checkpoint=ckpt)
    session = load_onnx_session(path, threads=threads, spin=spin)
    meta = meta_from_onnx(onnx_metadata(session), input_shape=list(session.get_inputs()[0].shape),
                          output_shape=list(session.get_outputs()[0].shape), where=str(path))
    return PoseModel(path, chosen, meta, session=session, quantized=onnx_is_quantized(path))
