"""Times one backend of ``posedistill bench`` in a process of its own.

ONNX Runtime timed inside a process that has loaded PyTorch competes with PyTorch's thread pool (hg4_128 at
256, batch 1, 2 threads: 83.5 ms in the shared process against 59.8 ms in a process without torch). So
:func:`posedistill.bench.benchmark.run_benchmark` runs each backend here, in a fresh interpreter:

    python -I -m posedistill.bench.worker SPEC.json OUT.json

For ONNX backends the process imports only the standard library, numpy, onnx, onnxruntime and
:mod:`posedistill.deploy.runtime` (``import posedistill`` loads no torch); for the torch backend it builds the model
with :mod:`posedistill.models` and :mod:`posedistill.deploy.optimize`, imported only then. The worker also measures
its own backend's multiply-accumulate peak (torch: a large matmul; ORT: a 128-channel 3x3 convolution), and writes
the rows' median / p90 times, the peak and whether torch was loaded.

The timing helpers here are the ones ``posedistill.bench.benchmark`` uses in-process too.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..deploy.runtime import INPUT_NAME, ort_session
from ..io import atomic_write_json



def best_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Fastest wall time of ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def time_rounds(fns: Sequence[Callable[[], Any]], *, repeats: int, warmup: int, interleave: bool
                ) -> list[dict[str, float]]:
    """Median and p90 ms of each function: ``repeats`` calls each, row by row or interleaved in rounds (so that
    other load on a shared machine falls on every row alike)."""
    samples: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        for _ in range(warmup):
            fn()
    order = [list(range(len(fns)))] * repeats if interleave else [[i] * repeats for i in range(len(fns))]
    for group in order:
        for i in group:
            start = time.perf_counter()
            fns[i]()
            samples[i].append((time.perf_counter() - start) * 1e3)
    result = []
    for times in samples:
        times.sort()
        result.append({"median_ms": statistics.median(times),
                       "p90_ms": times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]})
    return result


def ort_conv_peak(threads: int | None, repeats: int, channels: int = 128, side: int = 32, batch: int = 8) -> float:
    """GMAC/s of one 3x3 convolution (the Hourglass's main op) in ONNX Runtime."""
    c, h = channels, side
    w = np.random.default_rng(0).standard_normal((c, c, 3, 3), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "peak",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, c, h, h])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, c, h, h])],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort_session(proto.SerializeToString(), threads)
    x = np.random.default_rng(1).standard_normal((batch, c, h, h), dtype=np.float32)
    return batch * c * c * 9 * h * h / best_seconds(lambda: sess.run(None, {"x": x}), repeats) / 1e9


def onnx_runner(session: Any, batch: int, size: int) -> Callable[[], Any]:
    """One timed call: ``session`` on a fixed random batch of ``batch`` x 3 x ``size`` x ``size``."""
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size), dtype=np.float32)
    return lambda: session.run(None, {INPUT_NAME: x})


def torch_runner(model: Any, batch: int, size: int, channels_last: bool) -> Callable[[], Any]:
    """One timed call: ``model``'s last-stack output on a fixed random batch, under ``torch.inference_mode``."""
    import torch

    x = torch.randn(batch, 3, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def run() -> Any:
        with torch.inference_mode():
            return model(x)[-1]

    return run


def torch_matmul_peak(repeats: int, n: int = 1024) -> float:
    """GMAC/s of an ``n x n x n`` fp32 torch matrix product (fastest of ``repeats``) with torch's threads."""
    import torch

    a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    with torch.inference_mode():
        return n**3 / best_seconds(lambda: torch.mm(a, b, out=out), repeats) / 1e9


def _onnx_runners(spec: dict[str, Any]) -> tuple[list[Callable[[], Any]], float]:
    # the peak's session is gone before the model's opens: two sessions' spinning thread pools fight for the cores
    peak = ort_conv_peak(spec["threads"], spec["peak_repeats"])
    runners, sessions = [], {}
    for row in spec["rows"]:
        path = row["path"]
        if path not in sessions:
            sessions[path] = ort_session(path, spec["threads"])
        runners.append(onnx_runner(sessions[path], row["batch"], row["input_size"]))
    return runners, peak


def _torch_runners(spec: dict[str, Any]) -> tuple[list[Callable[[], Any]], float]:
    import torch  # the torch backend only: an ONNX Runtime worker never loads torch

    from ..deploy.optimize import optimize_for_inference
    from ..models import build_model

    if spec["threads"] is not None:
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    runners, models = [], {}
    for row in spec["rows"]:
        if row["model"] not in models:
            model = build_model(row["model"], num_joints=spec["num_joints"], depth=spec["depth"]).eval()
            models[row["model"]] = optimize_for_inference(model, fold_bn=spec["fold_bn"],
                                                          channels_last=spec["channels_last"])
        runners.append(torch_runner(models[row["model"]], row["batch"], row["input_size"], spec["channels_last"]))
    return runners, torch_matmul_peak(spec["peak_repeats"])


def main(argv: Sequence[str]) -> int:
    spec_path, out_path = argv
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    runners, peak = (_torch_runners if spec["backend"] == "torch" else _onnx_runners)(spec)
    times = time_rounds(runners, repeats=spec["repeats"], warmup=spec["warmup"], interleave=spec["interleave"])
    atomic_write_json(out_path, {"times": times, "peak_gmacs_per_s": peak, "torch_loaded": "torch" in sys.modules})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
