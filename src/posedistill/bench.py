"""Inference latency benchmark: teacher vs student under eager PyTorch, ONNX Runtime fp32 and ONNX Runtime int8.

For every (model, backend, input size, batch) the benchmark times ``repeats`` calls after ``warmup`` calls
(:func:`posedistill.profiling.time_call`) and reports the median and 90th percentile latency, throughput and
the fraction of this machine's *measured* peak: ``model GMACs / time`` against the best multiply-accumulate
rate of a large fp32 matrix product timed in the same run (:func:`measure_peak_gmacs`).

Backends:

* ``torch``: eager PyTorch after :func:`posedistill.export.optimize_for_inference` (BN folded,
  channels_last inputs), under ``torch.inference_mode``.
* ``onnx``: the model exported by :func:`posedistill.export.export_onnx`, ONNX Runtime CPU, all graph
  optimisations, idle threads not spinning (spinning ORT threads steal the CPU from PyTorch's threads in the
  same process: eager rows timed after ORT rows were up to 50x slower).
* ``onnx-int8``: the same model quantized by :func:`posedistill.export.quantize_onnx` (static QDQ,
  per-channel int8 weights, uint8 activations).

glibc's malloc returns large freed blocks to the OS and maps new ones on every call, so batched inference pays
page faults on each call; :func:`tune_malloc` (or ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000``
in the environment) keeps the memory instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .errors import ConfigError
from .export import export_onnx, optimize_for_inference, quantize_onnx
from .model_meta import ModelMeta
from .models import build_model, resolve_name
from .pose_model import load_pose_model
from .profiling import check_input_size, count_gmacs, num_threads, time_call
from .skeleton import JOINT_SETS

__all__ = [
    "BACKENDS", "MALLOC_ENV", "tune_malloc", "measure_peak_gmacs", "run_benchmark", "format_table",
    "summarize",
]

BACKENDS = ("torch", "onnx", "onnx-int8")
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters


def tune_malloc() -> bool:
    """Make glibc keep freed memory (no mmap for big blocks, no trimming), like :data:`MALLOC_ENV`.

    Returns False where glibc's ``mallopt`` is not available (other C libraries; nothing is changed).
    """
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok_mmap = libc.mallopt(_M_MMAP_MAX, 0)
        ok_trim = libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    except (OSError, AttributeError):
        return False
    return bool(ok_mmap and ok_trim)


def _best_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _ort_conv_peak(threads: int | None, repeats: int, channels: int = 128, side: int = 32, batch: int = 8) -> float:
    """GMAC/s of one 3x3 convolution (the Hourglass's main op) in ONNX Runtime."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    c, h = channels, side
    w = np.random.default_rng(0).standard_normal((c, c, 3, 3), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "peak",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, c, h, h])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, c, h, h])],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((batch, c, h, h), dtype=np.float32)
    return batch * c * c * 9 * h * h / _best_seconds(lambda: sess.run(None, {"x": x}), repeats) / 1e9


def measure_peak_gmacs(*, n: int = 1024, repeats: int = 10, threads: int | None = None) -> float:
    """This machine's fp32 multiply-accumulate peak (GMAC/s) with the given threads.

    The best of an ``n x n x n`` torch matrix product and a 128-channel 3x3 convolution in ONNX Runtime, each
    taken as its fastest of ``repeats`` calls (other load on the machine only lowers the figure).
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    with num_threads(threads), torch.inference_mode():
        mm = n**3 / _best_seconds(lambda: torch.mm(a, b, out=out), repeats) / 1e9
    return max(mm, _ort_conv_peak(threads if threads is not None else torch.get_num_threads(), repeats))


def _torch_runner(model: torch.nn.Module, batch: int, size: int, channels_last: bool) -> Callable[[], Any]:
    x = torch.randn(batch, 3, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def run() -> Any:
        with torch.inference_mode():
            return model(x)[-1]

    return run


def _onnx_runner(session: Any, batch: int, size: int) -> Callable[[], Any]:
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size), dtype=np.float32)
    return lambda: session.run(None, {"image": x})


@contextlib.contextmanager
def _workdir(path: str | os.PathLike | None) -> Iterator[Path]:
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="posedistill-bench-") as tmp:
        yield Path(tmp)


def _meta(model: torch.nn.Module, name: str, size: int, num_joints: int) -> dict[str, str]:
    """The exported file's model meta (:mod:`posedistill.model_meta`) when the joint count names a joint set."""
    joint_set = next((js for js in JOINT_SETS.values() if js.num_joints == num_joints), None)
    if joint_set is None:
        return {}
    return ModelMeta.for_model(model, arch=name, joint_set=joint_set, input_size=size).to_onnx_props()


def run_benchmark(
    models: Sequence[str] = ("hg8_256", "hg4_128"),
    *,
    backends: Sequence[str] = BACKENDS,
    input_sizes: Sequence[int] = (256, 128),
    batches: Sequence[int] = (1, 8),
    threads: int | None = None,
    repeats: int = 10,
    warmup: int = 2,
    num_joints: int = 14,
    channels_last: bool = True,
    fold_bn: bool = True,
    calibration_batches: int = 2,
    workdir: str | os.PathLike | None = None,
    interleave: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Time every (model, input size, backend, batch) combination.

    Weights are random (latency does not depend on them); int8 calibration uses random inputs for the same
    reason. Returns ``{"peak_gmacs_per_s", "threads", "rows": [{"model", "backend", "input_size", "batch",
    "latency_ms", "p90_ms", "gmacs", "images_per_s", "gmacs_per_s", "peak_fraction"}]}`` where ``gmacs`` is
    per forward pass of the whole batch.

    With ``interleave`` (default) every row is timed once per round, round after round, so that load from other
    processes on a shared machine falls on all rows alike and the ratios stay meaningful; otherwise each row is
    timed ``repeats`` times in a row (:func:`posedistill.profiling.time_call`).
    """
    names = [resolve_name(m) for m in models]
    for size in input_sizes:
        check_input_size(int(size))
    bad = [b for b in backends if b not in BACKENDS]
    if bad:
        raise ConfigError(f"unknown backend(s) {bad}; valid: {', '.join(BACKENDS)}")
    if not batches or any(int(b) < 1 for b in batches):
        raise ConfigError(f"batch sizes must be >= 1, got {list(batches)}")
    rows: list[dict[str, Any]] = []
    jobs = [(n, s) for n in names for s in input_sizes]
    with num_threads(threads), _workdir(workdir) as work:
        torch_threads = torch.get_num_threads()
        ort_threads = threads if threads is not None else torch_threads
        runners: list[tuple[dict[str, Any], Callable[[], Any]]] = []
        bar = tqdm(total=len(jobs) * len(backends) * len(batches), desc="prepare", disable=not progress,
                   leave=False)
        for name, size in jobs:
            model = build_model(name, num_joints=num_joints).eval()
            gmacs_1 = count_gmacs(model, size)
            fp32_path = work / f"{name}_{size}.onnx"
            int8_path = work / f"{name}_{size}_int8.onnx"
            for backend in backends:
                if backend == "torch":
                    fast = optimize_for_inference(model, fold_bn=fold_bn, channels_last=channels_last)
                    make = lambda b, m=fast: _torch_runner(m, b, size, channels_last)  # noqa: E731
                else:
                    if not fp32_path.exists():
                        export_onnx(model, fp32_path, input_size=size, check=False,
                                    metadata=_meta(model, name, size, num_joints))
                    path = fp32_path
                    if backend == "onnx-int8":
                        if not int8_path.exists():
                            rng = np.random.default_rng(0)
                            calib = [rng.standard_normal((1, 3, size, size), dtype=np.float32)
                                     for _ in range(calibration_batches)]
                            quantize_onnx(fp32_path, int8_path, calibration=calib)
                        path = int8_path
                    session = load_pose_model(path, threads=ort_threads, spin=False).session
                    make = lambda b, s=session: _onnx_runner(s, b, size)  # noqa: E731
                for batch in batches:
                    runners.append(({"model": name, "backend": backend, "input_size": int(size),
                                     "batch": int(batch), "gmacs": gmacs_1 * batch}, make(int(batch))))
                    bar.update()
        bar.close()
        peak = measure_peak_gmacs(threads=threads)
        times = _time_rounds([fn for _, fn in runners], repeats=repeats, warmup=warmup, interleave=interleave,
                             progress=progress)
        for (row, _), t in zip(runners, times):
            rows.append({**row, "latency_ms": t["median_ms"], "p90_ms": t["p90_ms"],
                         "images_per_s": row["batch"] / t["median_ms"] * 1e3,
                         "gmacs_per_s": row["gmacs"] / t["median_ms"] * 1e3,
                         "peak_fraction": row["gmacs"] / t["median_ms"] * 1e3 / peak})
    return {
        "peak_gmacs_per_s": peak,
        "threads": {"torch": torch_threads, "onnxruntime": ort_threads},
        "settings": {"repeats": repeats, "warmup": warmup, "interleave": interleave, "channels_last": channels_last,
                     "fold_bn": fold_bn,
                     "malloc": {k: os.environ.get(k) for k in MALLOC_ENV}},
        "rows": rows,
    }


def _time_rounds(fns: Sequence[Callable[[], Any]], *, repeats: int, warmup: int, interleave: bool,
                 progress: bool) -> list[dict[str, float]]:
    """Median and p90 ms of each function, timed row by row or interleaved in rounds."""
    if not interleave:
        return [time_call(fn, repeats=repeats, warmup=warmup) for fn in tqdm(fns, desc="bench", disable=not progress,
                                                                             leave=False)]
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for fn in fns:
        for _ in range(warmup):
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in tqdm(range(repeats), desc="bench rounds", disable=not progress, leave=False):
        for fn, out in zip(fns, samples):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1e3)
    result = []
    for times in samples:
        times.sort()
        result.append({"median_ms": statistics.median(times),
                       "p90_ms": times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]})
    return result


def _find(rows: Sequence[dict[str, Any]], **key: Any) -> dict[str, Any] | None:
    return next((r for r in rows if all(r[k] == v for k, v in key.items())), None)


def summarize(result: dict[str, Any], *, teacher: str = "hg8_256", student: str = "hg4_128") -> list[str]:
    """Target lines: student ORT vs teacher eager (>= 5x), student ORT fp32 vs its compute-bound limit (<= 1.3x)."""
    rows, peak, lines = result["rows"], result["peak_gmacs_per_s"], []
    teacher, student = resolve_name(teacher), resolve_name(student)
    for r in rows:
        if r["model"] != student or r["backend"] == "torch":
            continue
        ref = _find(rows, model=teacher, backend="torch", input_size=r["input_size"], batch=r["batch"])
        if ref is not None:
            speedup = ref["latency_ms"] / r["latency_ms"]
            lines.append(f"{student} {r['backend']} vs {teacher} torch @{r['input_size']} b{r['batch']}: "
                         f"{speedup:.1f}x faster (target >= 5x: {'ok' if speedup >= 5 else 'MISSED'})")
        if r["backend"] == "onnx":
            limit_ms = r["gmacs"] / peak * 1e3
            ratio = r["latency_ms"] / limit_ms
            lines.append(f"{student} onnx @{r['input_size']} b{r['batch']}: {r['latency_ms']:.2f} ms = "
                         f"{ratio:.2f}x its compute-bound limit {limit_ms:.2f} ms "
                         f"(target <= 1.3x: {'ok' if ratio <= 1.3 else 'MISSED'})")
    return lines


def format_table(result: dict[str, Any], *, teacher: str = "hg8_256", student: str = "hg4_128") -> str:
    """Plain-text table: latency, throughput, GMAC/s, % of peak, student/teacher and ORT/eager latency ratios."""
    rows, peak = result["rows"], result["peak_gmacs_per_s"]
    teacher, student = resolve_name(teacher), resolve_name(student)
    head = (f"{'model':<10} {'backend':<9} {'size':>4} {'batch':>5} {'median ms':>10} {'p90 ms':>9} "
            f"{'img/s':>8} {'GMACs':>8} {'GMAC/s':>7} {'%peak':>6} {'stu/tea':>7} {'ort/eager':>9}")
    lines = [f"measured peak: {peak:.1f} GMAC/s (best of fp32 torch matmul and ORT conv), threads: {result.get('threads')}", head,
             "-" * len(head)]
    for r in rows:
        other = teacher if r["model"] == student else student if r["model"] == teacher else None
        pair = _find(rows, model=other, backend=r["backend"], input_size=r["input_size"], batch=r["batch"])
        if pair is not None and r["model"] == student:
            st = f"{r['latency_ms'] / pair['latency_ms']:.3f}"
        else:
            st = "-"
        eager = _find(rows, model=r["model"], backend="torch", input_size=r["input_size"], batch=r["batch"])
        oe = f"{r['latency_ms'] / eager['latency_ms']:.3f}" if eager and r["backend"] != "torch" else "-"
        lines.append(
            f"{r['model']:<10} {r['backend']:<9} {r['input_size']:>4} {r['batch']:>5} {r['latency_ms']:>10.2f} "
            f"{r['p90_ms']:>9.2f} {r['images_per_s']:>8.1f} {r['gmacs']:>8.2f} {r['gmacs_per_s']:>7.1f} "
            f"{100 * r['peak_fraction']:>5.1f}% {st:>7} {oe:>9}"
        )
    return "\n".join(lines + [""] + summarize(result, teacher=teacher, student=student))
