"""ONNX Runtime: sessions, the model's input and output names, its metadata, and whether it is int8.

Imports only the standard library, onnx and onnxruntime (never torch), so that the benchmark's ONNX
Runtime worker (:mod:`posedistill.bench.worker`) can time a model in a process without PyTorch's thread pool.

* :func:`ort_session` opens a file or a serialized model on the CPU with chosen threads, spinning and
  optimisation level.
* :func:`load_onnx_session` does that for a posedistill model file and turns any bad file into a one-line
  :class:`~posedistill.errors.CheckpointError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from ..errors import CheckpointError

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "ort_session", "load_onnx_session", "onnx_metadata", "onnx_is_quantized"]

INPUT_NAME = "image"
OUTPUT_NAME = "heatmaps"

_OPTIMIZATION = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
}


def ort_session(model: Any, threads: int | None, *, spin: bool = True, optimization: str = "all") -> Any:
    """ONNX Runtime CPU session on a file path or serialized model; ``threads``: intra-op threads (None: ORT's
    choice); ``spin=False``: idle threads sleep instead of busy-waiting."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = _OPTIMIZATION[optimization]
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def load_onnx_session(
    path: str | os.PathLike, *, threads: int | None = None, optimization: str = "all", spin: bool = True
) -> Any:
    """An ``onnxruntime.InferenceSession`` on CPU; any unreadable or invalid file -> :class:`CheckpointError`.

    ``spin=False`` makes idle intra-op threads sleep instead of busy-waiting; use it when other work (e.g.
    PyTorch) shares the process's cores, where ORT's spinning threads otherwise steal their CPU time.
    """
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
    """Whether the ONNX model at ``path`` holds quantized operators (an int8 model of
    :func:`posedistill.deploy.quantize.quantize_onnx`)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return any(node.op_type in QUANTIZED_OPS for node in graph.node)
