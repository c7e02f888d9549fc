"""``posedistill bench``: latency and throughput of teacher and student under PyTorch and ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import click

from ..bench.benchmark import BACKENDS, format_table, run_benchmark, tune_malloc
from ..io import atomic_write_json
from ..models import DEFAULT_DEPTH
from ..models.pretrained import shipped_pair


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(t) for t in _csv(text)]
    except ValueError:
        raise click.BadParameter(f"comma-separated integers expected, got {text!r}", param_hint=what) from None


@click.command()
@click.option("--teacher", default=None, help="Teacher model name (default: the shipped teacher).")
@click.option("--student", default=None, help="Student model name (default: the shipped student).")
@click.option("--backends", default=",".join(BACKENDS), show_default=True, help="torch, onnx, onnx-int8.")
@click.option("--sizes", default=None, help="Input sizes (multiples of 64; default: the shipped pair's without "
                                              "--teacher / --student, else 256,128).")
@click.option("--depth", type=int, default=None, help="Hourglass depth of both models (default: the shipped pair's "
                                                        "without --teacher / --student, else 4).")
@click.option("--batches", default="1,8", show_default=True, help="Batch sizes.")
@click.option("--threads", type=int, default=None, help="Threads for torch and ONNX Runtime (default: torch's).")
@click.option("--repeats", type=int, default=10, show_default=True, help="Timed calls per row.")
@click.option("--warmup", type=int, default=2, show_default=True, help="Untimed calls per row.")
@click.option("--no-channels-last", is_flag=True, help="Eager torch in NCHW instead of channels_last.")
@click.option("--no-fold-bn", is_flag=True, help="Eager torch without BN folding.")
@click.option("--no-malloc-tuning", is_flag=True,
              help="Keep glibc malloc defaults (by default freed memory is kept, as with MALLOC_MMAP_MAX_=0 "
                   "MALLOC_TRIM_THRESHOLD_=100000000000).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write {peak_gmacs_per_s, rows: [...]} to this file.")
@click.option("--no-interleave", is_flag=True,
              help="Time each row's repeats back to back instead of in rounds over all rows.")
@click.option("--same-process", is_flag=True,
              help="Time all backends in this process (ONNX Runtime then competes with PyTorch's threads) instead "
                   "of each in a process of its own.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def bench(teacher: str | None, student: str | None, backends: str, sizes: str | None, depth: int | None,
          batches: str, threads: int | None, repeats: int, warmup: int, no_channels_last: bool, no_fold_bn: bool,
          no_malloc_tuning: bool, json_path: Path | None, no_interleave: bool, same_process: bool,
          no_progress: bool) -> None:
    """Latency (median, p90) and throughput of teacher and student: eager torch, ORT fp32, ORT int8.

    Each backend is timed in a process of its own (ONNX Runtime without torch loaded). Also prints
    student/teacher and ORT/eager latency ratios and each row's fraction of the machine's peak (GMACs / time
    against the best fp32 peak the backends' processes measured in the same run). Weights are random.
    """
    if not no_malloc_tuning:
        tune_malloc()
    shipped = shipped_pair()
    if teacher is None and student is None:  # the shipped pair at its own depth and input size
        input_sizes = _ints(sizes, "--sizes") if sizes else [shipped["student"].input_size]
        depth = depth or shipped["student"].depth
    else:
        input_sizes = _ints(sizes or "256,128", "--sizes")
    teacher, student = teacher or shipped["teacher"].model, student or shipped["student"].model
    result = run_benchmark(
        [teacher, student], depth=depth or DEFAULT_DEPTH, backends=_csv(backends), input_sizes=input_sizes,
        batches=_ints(batches, "--batches"), threads=threads, repeats=repeats, warmup=warmup,
        channels_last=not no_channels_last, fold_bn=not no_fold_bn, interleave=not no_interleave,
        progress=not no_progress, isolate=not same_process,
    )
    click.echo(format_table(result, teacher=teacher, student=student))
    if json_path is not None:
        atomic_write_json(json_path, result)
        click.echo(f"wrote {json_path}")
