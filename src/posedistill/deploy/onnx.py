"""Deployment helpers: inference-time model rewrites, ONNX export and int8 quantization.

* :func:`fold_batchnorm` folds every ``Conv2d -> BatchNorm2d`` pair of an eval-mode Hourglass into the conv
  (the pre-activation BNs at the top of each residual unit follow an addition, not a conv, and stay).
* :func:`optimize_for_inference` = BN folding + optional ``channels_last`` memory format, the fastest eager
  PyTorch path on CPU (measured in ``posedistill bench``).
* :func:`export_onnx` writes the *last* stack's heatmaps (``image`` N x 3 x H x W -> ``heatmaps``
  N x K x H/4 x W/4) with a dynamic batch axis, checks the file with ``onnx.checker`` and compares it with
  PyTorch.
* :func:`quantize_onnx` makes an int8 model with ONNX Runtime: static QDQ, per-channel weights, calibrated on
  real images (or dynamic weight-only quantization, which needs no calibration data).
* :func:`load_onnx_session` opens a model in ONNX Runtime and turns any bad file into a :class:`CheckpointError`.

Every file is written to a temporary name and renamed, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..io import atomic_open

__all__ = [
    "fold_batchnorm", "optimize_for_inference", "HeatmapHead", "export_onnx", "check_onnx",
    "quantize_onnx", "load_onnx_session", "onnx_metadata", "onnx_is_quantized", "INPUT_NAME", "OUTPUT_NAME",
]

INPUT_NAME = "image"
OUTPUT_NAME = "heatmaps"
DEFAULT_OPSET = 17


# ---------------------------------------------------------------------------------------------- eager rewrites
def _fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    fused = copy.deepcopy(conv)
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (bias - bn.running_mean) * scale + bn.bias
        if fused.bias is None:
            fused.bias = nn.Parameter(new_bias)
        else:
            fused.bias.copy_(new_bias)
    return fused


def _last_conv(module: nn.Module) -> tuple[nn.Module, str] | None:
    """(parent, attribute) of the conv that ends ``module`` (a Conv2d or a Sequential ending in one)."""
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], nn.Conv2d):
        return module, str(len(module) - 1)
    return None


def fold_batchnorm(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Fold each ``Conv2d`` directly followed by a ``BatchNorm2d`` (inside an ``nn.Sequential``) into the conv.

    The model must be in eval mode (BN uses its running statistics). Returns the rewritten model (a copy
    unless ``inplace``); the output is unchanged up to float rounding.
    """
    if model.training:
        raise ConfigError("fold_batchnorm needs a model in eval mode")
    if not inplace:
        model = copy.deepcopy(model)
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for i in range(len(names) - 1):
            prev, nxt = seq._modules[names[i]], seq._modules[names[i + 1]]
            if not isinstance(nxt, nn.BatchNorm2d) or not nxt.track_running_stats:
                continue
            if isinstance(prev, nn.Conv2d):
                seq._modules[names[i]] = _fuse_conv_bn(prev, nxt)
            elif (found := _last_conv(prev)) is not None:  # depthwise-separable block: fold into the pointwise
                parent, attr = found
                parent._modules[attr] = _fuse_conv_bn(parent._modules[attr], nxt)
            else:
                continue
            seq._modules[names[i + 1]] = nn.Identity()
    return model


def optimize_for_inference(model: nn.Module, *, fold_bn: bool = True, channels_last: bool = True) -> nn.Module:
    """A copy of ``model`` for fast eager CPU inference: eval mode, BN folded, optionally channels_last.

    With ``channels_last`` the caller should also pass inputs in ``torch.channels_last`` memory format
    (``x.contiguous(memory_format=torch.channels_last)``); outputs are ordinary tensors either way.
    """
    model = copy.deepcopy(model).eval()
    if fold_bn:
        model = fold_batchnorm(model, inplace=True)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


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
    import onnx

    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    model = model.eval()
    net = HeatmapHead(fold_batchnorm(model) if fold_bn else copy.deepcopy(model)).eval()
    example = torch.randn(1, 3, h, w)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".onnx-export-") as tmp:
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
        os.replace(tmp_path, path)
    return path


def check_onnx(
    path: str | os.PathLike, model: nn.Module, *, input_size: int | tuple[int, int], atol: float = 1e-4,
    batch: int = 2,
) -> float:
    """``onnx.checker`` + max |ORT - PyTorch| of the last heatmaps on a random batch; raises if above ``atol``."""
    import onnx

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


def load_onnx_session(
    path: str | os.PathLike, *, threads: int | None = None, optimization: str = "all", spin: bool = True
) -> Any:
    """An ``onnxruntime.InferenceSession`` on CPU; any unreadable or invalid file -> :class:`CheckpointError`.

    ``spin=False`` makes idle intra-op threads sleep instead of busy-waiting; use it when other work (e.g.
    PyTorch) shares the process's cores, where ORT's spinning threads otherwise steal their CPU time.
    """
    from ..bench.worker import ort_session

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: ONNX model not found")
    try:
        session = ort_session(str(path), threads, spin=spin, optimization=optimization)
    except Exception as exc:  # ORT raises its own Fail / InvalidGraph / InvalidProtobuf types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a valid ONNX model ({first[:200]})") from exc
    names = [i.name for i in session.get_inputs()]
    if names != [INPUT_NAME] or len(session.get_outputs()) != 1:
        raise CheckpointError(f"{path}: not a posedistill ONNX model (inputs {names}, expected ['{INPUT_NAME}'])")
    return session


def onnx_metadata(session: Any) -> dict[str, str]:
    """``metadata_props`` of an open session (joint_set, arch, input_size, ...)."""
    return dict(session.get_modelmeta().custom_metadata_map)


QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger",
                           "DynamicQuantizeLinear", "QLinearMatMul"})


def onnx_is_quantized(path: str | os.PathLike) -> bool:
    """Whether the ONNX model at ``path`` holds quantized operators (an int8 model of :func:`quantize_onnx`)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(node.op_type in QUANTIZED_OPS for node in graph.node)


# ---------------------------------------------------------------------------------------------- int8
class _CalibrationReader:
    """``onnxruntime.quantization.CalibrationDataReader`` over an iterable of N x 3 x H x W float32 batches."""

    def __init__(self, batches: Iterable[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}

    def rewind(self) -> None:  # pragma: no cover - only used by some calibrators
        raise NotImplementedError


def quantize_onnx(
    fp32_path: str | os.PathLike,
    int8_path: str | os.PathLike,
    *,
    calibration: Iterable[np.ndarray] | None = None,
    mode: str = "static",
    per_channel: bool = True,
    op_types: Sequence[str] | None = None,
    method: str = "minmax",
) -> Path:
    """Quantize an exported fp32 model to int8 with ONNX Runtime.

    Args:
        fp32_path: model written by :func:`export_onnx`.
        int8_path: output file (written atomically).
        calibration: for ``mode="static"``: batches (N x 3 x H x W float32, normalised like the model input),
            e.g. crops of real images from :func:`posedistill.inference.calibration_batches`.
        mode: ``"static"`` (QDQ, uint8 activations and int8 weights, activation ranges from calibration) or
            ``"dynamic"`` (weights only; activation ranges computed per call, no calibration data).
        per_channel: per-output-channel weight scales (recommended for convs).
        op_types: op types to quantize (default: ORT's choice, i.e. Conv, Add, MaxPool, Resize, ... so that
            tensors stay int8 between convs; quantizing only Conv measured slower, see docs/inference.md).
        method: static calibration method, ``"minmax"``, ``"entropy"`` or ``"percentile"``.
    """
    from onnxruntime.quantization import (
        CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if mode not in ("static", "dynamic"):
        raise ConfigError(f"int8 mode must be 'static' or 'dynamic', got {mode!r}")
    if method not in methods:
        raise ConfigError(f"calibration method must be one of {sorted(methods)}, got {method!r}")
    if mode == "static" and calibration is None:
        raise ConfigError("static int8 quantization needs calibration images (--calib DATA)")
    ops = list(op_types) if op_types else None
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    load_onnx_session(fp32_path)  # clear error for a bad input file
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=int8_path.parent, prefix=".onnx-int8-") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        previous_disable = logging.root.manager.disable
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.disable(logging.WARNING)  # ORT's quantizer logs per-tensor notes on the root logger
            try:
                quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
                if mode == "static":
                    quantize_static(
                        str(pre), str(out), _CalibrationReader(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=ops, calibrate_method=methods[method],
                    )
                else:
                    quantize_dynamic(str(pre), str(out), per_channel=per_channel, weight_type=QuantType.QInt8,
                                     op_types_to_quantize=ops)
            finally:
                logging.disable(previous_disable)
        load_onnx_session(out)  # the result must open
        os.replace(out, int8_path)
    return int8_path
