"""int8 quantization of an exported model with ONNX Runtime: static QDQ, per-channel weights, calibrated on real
image crops (:func:`posedistill.inference.calibration.calibration_batches`), or dynamic weight-only quantization,
which needs no calibration data. The output is written to a temporary name and renamed, so a failed run leaves
nothing behind.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io import output_target, replace_into
from .runtime import INPUT_NAME, load_onnx_session

__all__ = ["quantize_onnx"]


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
    int8_path, through = output_target(int8_path)
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=None if through else int8_path.parent, prefix=".onnx-int8-") as tmp:
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
        replace_into(out, int8_path)
    return int8_path
