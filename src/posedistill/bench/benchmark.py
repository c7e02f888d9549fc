"""Inference latency benchmark: teacher vs student under eager PyTorch, ONNX Runtime fp32 and ONNX Runtime int8.

For every (model, backend, input size, batch) the benchmark times ``repeats`` calls after ``warmup`` calls
(:func:`posedistill.bench.worker.time_rounds`), eager torch in a process of its own and each ONNX model in one
of its own, and reports the median and 90th percentile latency, throughput and
the fraction of this machine's *measured* peak: ``model GMACs / time`` against the best multiply-accumulate
rate of a large fp32 matrix product timed in the same run (:func:`measure_peak_gmacs`).

Backends:

* ``torch``: eager PyTorch after :func:`posedistill.deploy.optimize.optimize_for_inference` (BN folded,
  channels_last inputs), under ``torch.inference_mode``.
* ``onnx``: the model exported by :func:`posedistill.deploy.onnx.export_onnx`, ONNX Runtime CPU, all graph
  optimisations, idle threads not spinning (spinning ORT threads steal the CPU from PyTorch's threads in the
  same process: eager rows timed after ORT rows were up to 50x slower).
* ``onnx-int8``: the same model quantized by :func:`posedistill.deploy.quantize.quantize_onnx` (static QDQ,
  per-channel int8 weights, uint8 activations).

glibc's malloc returns large freed blocks to the OS and maps new ones on every call, so batched inference pays
page faults on each call; :func:`tune_malloc` (or ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000``
in the environment) keeps the memory instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from . import worker
from .worker import onnx_runner, ort_conv_peak, time_rounds, torch_matmul_peak, torch_runner
from ..errors import ConfigError
from ..deploy.onnx import export_onnx
from ..deploy.optimize import optimize_for_inference
from ..deploy.quantize import quantize_onnx
from ..deploy.runtime import load_onnx_session
from ..io import atomic_write_json
from ..models.meta import ModelMeta
from ..models import build_model, resolve_name
from ..models.pretrained import shipped_pair
from .profiling import check_input_size, count_gmacs, num_threads
from ..skeleton import JOINT_SETS

__all__ = [
    "BACKENDS", "MALLOC_ENV", "tune_malloc", "measure_peak_gmacs", "run_benchmark", "format_table",
    "summarize",
]

BACKENDS = ("torch", "onnx", "onnx-int8")
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters
_MALLOC_TUNED = False


def tune_malloc() -> bool:
    """Make glibc keep freed memory (no mmap for big blocks, no trimming), like :data:`MALLOC_ENV`.

    Returns False where glibc's ``mallopt`` is not available (other C libraries; nothing is changed).
    """
    global _MALLOC_TUNED
    if platform.system() != "Linux":
        return False
    _MALLOC_TUNED = True  # worker processes get MALLOC_ENV
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok_mmap = libc.mallopt(_M_MMAP_MAX, 0)
        ok_trim = libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    except (OSError, AttributeError):
        return False
    return bool(ok_mmap and ok_trim)


def measure_peak_gmacs(*, n: int = 1024, repeats: int = 10, threads: int | None = None) -> float:
    """This machine's fp32 multiply-accumulate peak (GMAC/s) with the given threads.

    The best of an ``n x n x n`` torch matrix product and a 128-channel 3x3 convolution in ONNX Runtime, each
    taken as its fastest of ``repeats`` calls (other load on the machine only lowers the figure).
    """
    with num_threads(threads):
        mm = torch_matmul_peak(repeats, n)
    return max(mm, ort_conv_peak(threads if threads is not None else torch.get_num_threads(), repeats))


@contextlib.contextmanager
def _workdir(path: str | os.PathLike | None) -> Iterator[Path]:
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="posedistill-bench-") as tmp:
        yield Path(tmp)


def run_benchmark(
    models: Sequence[str] | None = None,
    *,
    depth: int | None = None,
    backends: Sequence[str] = BACKENDS,
    input_sizes: Sequence[int] | None = None,
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
    isolate: bool = True,
) -> dict[str, Any]:
    """Time every (model, input size, backend, batch) combination.

    ``models``, ``depth`` (hourglass depth of every model) and ``input_sizes`` default to the pair the package
    ships (:func:`posedistill.models.pretrained.shipped_pair`: its teacher and student at their input size).

    With ``isolate`` (default) each backend is timed in a process of its own (:mod:`posedistill.bench.worker`):
    ONNX Runtime in a process that has loaded PyTorch competes with PyTorch's thread pool and was measured up
    to 40 % slower there. The peak is then the best of the processes' own peaks, measured in the same run.

    Weights are random (latency does not depend on them); int8 calibration uses random inputs for the same
    reason. Returns ``{"peak_gmacs_per_s", "threads", "rows": [{"model", "backend", "input_size", "batch",
    "latency_ms", "p90_ms", "gmacs", "images_per_s", "gmacs_per_s", "peak_fraction"}]}`` where ``gmacs`` is
    per forward pass of the whole batch.

    With ``interleave`` (default) every row is timed once per round, round after round, so that load from other
    processes on a shared machine falls on all rows alike and the ratios stay meaningful; otherwise each row is
    timed ``repeats`` times in a row.
    """
    shipped = shipped_pair()
    if models is None:
        models = [shipped["teacher"].model, shipped["student"].model]
    depth = shipped["student"].depth if depth is None else int(depth)
    input_sizes = sorted({s.input_size for s in shipped.values()}) if input_sizes is None else input_sizes
    names = [resolve_name(m) for m in models]
    for size in input_sizes:
        check_input_size(int(size))
    bad = [b for b in backends if b not in BACKENDS]
    if bad:
        raise ConfigError(f"unknown backend(s) {bad}; valid: {', '.join(BACKENDS)}")
    if not batches or any(int(b) < 1 for b in batches):
        raise ConfigError(f"batch sizes must be >= 1, got {list(batches)}")
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    jobs = [(n, int(s)) for n in names for s in input_sizes]
    plan: list[tuple[dict[str, Any], Any]] = []  # (row, torch model or ONNX path)
    with num_threads(threads), _workdir(workdir) as work:
        torch_threads = torch.get_num_threads()
        ort_threads = threads if threads is not None else torch_threads
        bar = tqdm(total=len(jobs) * len(backends), desc="prepare", disable=not progress, leave=False)
        for name, size in jobs:
            model = build_model(name, num_joints=num_joints, depth=depth).eval()
            gmacs_1 = count_gmacs(model, size)
            for backend in backends:
                target = model if backend == "torch" else _onnx_file(model, name, size, backend, work,
                                                                     calibration_batches)
                for batch in batches:
                    plan.append(({"model": name, "backend": backend, "input_size": size, "batch": int(batch),
                                  "gmacs": gmacs_1 * int(batch)}, target))
                bar.update()
        bar.close()
        settings = {"threads": threads, "repeats": repeats, "warmup": warmup, "interleave": interleave, "depth": depth,
                    "channels_last": channels_last, "fold_bn": fold_bn, "num_joints": num_joints}
        if isolate:
            times, peak = _time_in_own_processes(plan, backends, settings, work, progress)
        else:
            times, peak = _time_in_this_process(plan, settings, ort_threads, progress)
    rows = [{**row, "latency_ms": t["median_ms"], "p90_ms": t["p90_ms"],
             "images_per_s": row["batch"] / t["median_ms"] * 1e3,
             "gmacs_per_s": row["gmacs"] / t["median_ms"] * 1e3,
             "peak_fraction": row["gmacs"] / t["median_ms"] * 1e3 / peak} for (row, _), t in zip(plan, times)]
    return {
        "peak_gmacs_per_s": peak,
        "threads": {"torch": torch_threads, "onnxruntime": ort_threads},
        "settings": {"repeats": repeats, "warmup": warmup, "interleave": interleave, "channels_last": channels_last,
                     "fold_bn": fold_bn, "process": "own" if isolate else "shared",
                     "malloc": {k: os.environ.get(k) for k in MALLOC_ENV}},
        "rows": rows,
    }


def _meta(model: torch.nn.Module, name: str, size: int) -> dict[str, str]:
    """The exported file's model meta (:mod:`posedistill.models.meta`) when the joint count names a joint set."""
    num_joints = int(model.num_joints) if hasattr(model, "num_joints") else 0
    joint_set = next((js for js in JOINT_SETS.values() if js.num_joints == num_joints), None)
    if joint_set is None:
        return {}
    return ModelMeta.for_model(model, arch=name, joint_set=joint_set, input_size=size).to_onnx_props()


def _onnx_file(model: torch.nn.Module, name: str, size: int, backend: str, work: Path,
               calibration_batches: int) -> Path:
    """The model exported to ONNX (fp32) in ``work``, quantized to int8 for ``onnx-int8`` (random calibration)."""
    fp32_path, int8_path = work / f"{name}_{size}.onnx", work / f"{name}_{size}_int8.onnx"
    if not fp32_path.exists():
        export_onnx(model, fp32_path, input_size=size, check=False, metadata=_meta(model, name, size))
    if backend != "onnx-int8":
        return fp32_path
    if not int8_path.exists():
        rng = np.random.default_rng(0)
        calib = [rng.standard_normal((1, 3, size, size), dtype=np.float32) for _ in range(calibration_batches)]
        quantize_onnx(fp32_path, int8_path, calibration=calib)
    return int8_path


def _time_in_own_processes(plan: Sequence[tuple[dict[str, Any], Any]], backends: Sequence[str],
                           settings: dict[str, Any], work: Path, progress: bool
                           ) -> tuple[list[dict[str, float]], float]:
    """Eager torch timed by :mod:`posedistill.bench.worker` in one fresh interpreter, and every ONNX file in an
    interpreter of its own (ONNX Runtime without torch, one session per process: the idle threads of another
    session's pool would spin and take the cores); the peak is the best of the workers' own peaks, all measured
    in this run."""
    times: list[dict[str, float] | None] = [None] * len(plan)
    peaks = []
    env = {**os.environ, **(MALLOC_ENV if _MALLOC_TUNED else {})}
    groups: list[tuple[str, list[int]]] = []
    for backend in backends:
        idx = [i for i, (row, _) in enumerate(plan) if row["backend"] == backend]
        if backend == "torch":
            groups.append((backend, idx))
        else:
            for target in dict.fromkeys(str(plan[i][1]) for i in idx):
                groups.append((backend, [i for i in idx if str(plan[i][1]) == target]))
    for n, (backend, idx) in enumerate(tqdm(groups, desc="bench processes", disable=not progress, leave=False)):
        spec = {**settings, "backend": "torch" if backend == "torch" else "onnx", "peak_repeats": 10,
                "rows": [{**plan[i][0], "path": None if backend == "torch" else str(plan[i][1])} for i in idx]}
        spec_path, out_path = work / f"spec_{n}_{backend}.json", work / f"times_{n}_{backend}.json"
        atomic_write_json(spec_path, spec)
        proc = subprocess.run([sys.executable, "-I", "-m", worker.__name__, str(spec_path), str(out_path)],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise ConfigError(f"timing the {backend} backend in its own process failed: {last}")
        result = json.loads(out_path.read_text(encoding="utf-8"))
        if backend != "torch" and result["torch_loaded"]:
            raise RuntimeError("the ONNX Runtime timing process loaded torch")
        peaks.append(result["peak_gmacs_per_s"])
        for i, t in zip(idx, result["times"]):
            times[i] = t
    return times, max(peaks)  # type: ignore[return-value]


def _time_in_this_process(plan: Sequence[tuple[dict[str, Any], Any]], settings: dict[str, Any], ort_threads: int,
                          progress: bool) -> tuple[list[dict[str, float]], float]:
    """All backends timed here (ORT's idle threads do not spin, or they would steal PyTorch's CPU)."""
    runners, fast, sessions = [], {}, {}
    for row, target in plan:
        size, batch = row["input_size"], row["batch"]
        if row["backend"] == "torch":
            if id(target) not in fast:
                fast[id(target)] = optimize_for_inference(target, fold_bn=settings["fold_bn"],
                                                          channels_last=settings["channels_last"])
            runners.append(torch_runner(fast[id(target)], batch, size, settings["channels_last"]))
        else:
            if target not in sessions:
                sessions[target] = load_onnx_session(target, threads=ort_threads, spin=False)
            runners.append(onnx_runner(sessions[target], batch, size))
    peak = measure_peak_gmacs(threads=settings["threads"])
    times = _time_rounds(runners, repeats=settings["repeats"], warmup=settings["warmup"],
                         interleave=settings["interleave"], progress=progress)
    return times, peak


def _time_rounds(fns: Sequence[Callable[[], Any]], *, repeats: int, warmup: int, interleave: bool,
                 progress: bool) -> list[dict[str, float]]:
    """Median and p90 ms of each function, timed row by row or interleaved in rounds."""
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    return time_rounds(fns, repeats=repeats, warmup=warmup, interleave=interleave)


def _find(rows: Sequence[dict[str, Any]], **key: Any) -> dict[str, Any] | None:
    return next((r for r in rows if all(r[k] == v for k, v in key.items())), None)


def _pair(teacher: str | None, student: str | None) -> tuple[str, str]:
    shipped = shipped_pair()
    return resolve_name(teacher or shipped["teacher"].model), resolve_name(student or shipped["student"].model)


def summarize(result: dict[str, Any], *, teacher: str | None = None, student: str | None = None) -> list[str]:
    """Target lines: student ORT vs teacher eager (>= 5x), student ORT fp32 vs its compute-bound limit (<= 1.3x).
    ``teacher`` / ``student``: default the shipped pair."""
    rows, peak, lines = result["rows"], result["peak_gmacs_per_s"], []
    teacher, student = _pair(teacher, student)
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


def format_table(result: dict[str, Any], *, teacher: str | None = None, student: str | None = None) -> str:
    """Plain-text table: latency, throughput, GMAC/s, % of peak, student/teacher and ORT/eager latency ratios."""
    rows, peak = result["rows"], result["peak_gmacs_per_s"]
    teacher, student = _pair(teacher, student)
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
