#!/usr/bin/env python
"""Inference latency of the FPD teacher (hg8_256) and student (hg4_128): eager PyTorch, ONNX Runtime fp32/int8.

Runs :func:`posedistill.bench.benchmark.run_benchmark` (the code behind ``posedistill bench``), prints the table and
writes ``benchmarks/results/inference_latency.json``. glibc malloc is tuned first (as with
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000``) so batched calls do not pay page faults.

    python benchmarks/inference_latency.py                 # full run (several minutes on 2 cores)
    python benchmarks/inference_latency.py --quick         # sizes 128 only, 3 repeats
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posedistill.bench.benchmark import format_table, run_benchmark, tune_malloc
from posedistill.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "inference_latency.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="threads for torch and ONNX Runtime")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--sizes", default="256,128")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--quick", action="store_true", help="128 input only, 3 repeats")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    tune_malloc()
    sizes = [128] if args.quick else [int(s) for s in args.sizes.split(",")]
    result = run_benchmark(
        ["hg8_256", "hg4_128"], input_sizes=sizes, batches=[int(b) for b in args.batches.split(",")],
        threads=args.threads, repeats=3 if args.quick else args.repeats, warmup=args.warmup,
    )
    print(format_table(result))
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
