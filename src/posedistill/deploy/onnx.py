"""ONNX export of a pose model and its check.

:func:`export_onnx` writes the *last* stack's heatmaps (``image`` N x 3 x H x W -> ``heatmaps`` N x K x H/4 x W/4)
with a dynamic batch axis, BN folded first (:func:`posedistill.deploy.optimize.fold_batchnorm`); :func:`check_onnx`
runs ``onnx.checker`` and compares ONNX Runtime's output with PyTorch's. The file is written to a temporary name
and renamed, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ..errors import CheckpointError
from ..io import atomic_open, output_target, replace_into
from .optimize import fold_batchnorm
from .runtime import INPUT_NAME, OUTPUT_NAME, load_onnx_session

__all__ = ["HeatmapHead", "export_onnx", "check_onnx", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17


class HeatmapHead(nn.Module):
    """Wrap a stacked Hourglass so that ``forward`` returns only the last stack's heatmaps (for export)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[-1]


# ---------------------------------------------------------------------------------------------- ONNX export
def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    input_size: int | tuple[int, int] = 256,
    opset: int = DEFAULT_OPSET,
    fold_bn: bool = True,
    metadata: dict[str, str] | None = None,
    check: bool = True,
    atol: float = 1e-4,
    dynamo: bool = False,
) -> Path:
    """Export the model's last-stack heatmaps to ONNX with a dynamic batch axis.

    Args:
        model: a stacked Hourglass (its forward returns a list of heatmaps).
        path: output ``.onnx`` file (written atomically).
        input_size: side (or (H, W)) of the input image the graph is traced with; H and W stay fixed.
        opset: ONNX opset.
        fold_bn: fold conv-BN pairs first (ORT would fuse them too; this keeps the graph small).
        metadata: extra ``metadata_props`` (e.g. joint_set, arch) stored in the file.
        check: run ``onnx.checker`` and compare ONNX Runtime's output with PyTorch's at batch 2.
        atol: maximum absolute heatmap difference accepted by the check.
        dynamo: use the ``torch.export``-based exporter (slower to export, same graph semantics) instead of
            the TorchScript exporter.
    Returns:
        the output path.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    model = model.eval()
    net = HeatmapHead(fold_batchnorm(model) if fold_bn else copy.deepcopy(model)).eval()
    example = torch.randn(1, 3, h, w)
    path, through = output_target(path)  # a symlink's target; a device or FIFO is staged in the temp dir
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=None if through else path.parent, prefix=".onnx-export-") as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if dynamo:
                torch.onnx.export(
                    net, (example,), tmp_path, dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
                    opset_version=max(opset, 18), external_data=False,
                )
            else:
                torch.onnx.export(
                    net, (example,), str(tmp_path), dynamo=False, input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME], opset_version=opset,
                    dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                )
        proto = onnx.load(str(tmp_path))
        meta = {"producer": "posedistill", "input_size": f"{h}x{w}", **(metadata or {})}
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = str(key), str(value)
        with atomic_open(tmp_path, "wb") as handle:
            handle.write(proto.SerializeToString())
        if check:
            check_onnx(tmp_path, model, input_size=(h, w), atol=atol)
        replace_into(tmp_path, path)
    return path


def check_onnx(
    path: str | os.PathLike, model: nn.Module, *, input_size: int | tuple[int, int], atol: float = 1e-4,
    batch: int = 2,
) -> float:
    """``onnx.checker`` + max |ORT - PyTorch| of the last heatmaps on a random batch; raises if above ``atol``."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise CheckpointError(f"{path}: exported ONNX model fails onnx.checker ({str(exc).splitlines()[0]})") from exc
    x = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = model.eval()(x)[-1].numpy()
    out = load_onnx_session(path).run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    err = float(np.abs(out - ref).max())
    if not err <= atol:
        raise CheckpointError(f"{path}: ONNX output differs from PyTorch by {err:.2e} > {atol:.0e}")
    return err
