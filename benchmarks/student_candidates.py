#!/usr/bin/env python
"""Cost of the candidate students of issue 26: GMACs, parameters, and the latency of one person (batch 1) under
eager PyTorch (BN folded, channels_last, as ``Predictor``'s torch backend) and ONNX Runtime fp32 (the model as
``posedistill export`` writes it: BN folded, last stack only), one thread each.

Random weights (latency does not depend on them). Run it on a quiet machine (pause training runs with
``kill -STOP``): the two backends of a model are timed one after the other in the same minute, so compare them as
ratios. Prints a table, writes ``benchmarks/results/student_candidates.json`` with the CPU capability.

    python benchmarks/student_candidates.py [--threads 1] [--repeats 30]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from posedistill.bench.profiling import time_call
from posedistill.deploy.onnx import export_onnx
from posedistill.deploy.optimize import optimize_for_inference
from posedistill.deploy.runtime import INPUT_NAME, ort_session
from posedistill.io import atomic_write_json
from posedistill.models import build_model

RESULTS = Path(__file__).resolve().parent / "results" / "student_candidates.json"
# (model, input size): today's student, narrower / shallower / deeper / wider ones, and 192 input
CANDIDATES = (("hg1_64", 128), ("hg2_32", 128), ("hg2_64", 128), ("hg4_64", 128), ("hg4_64_dw", 128),
              ("hg1_128", 128), ("hg2_128", 128), ("hg2_64", 192), ("hg4_64", 192), ("hg4_128", 128),
              ("hg4_128", 192))
DEPTH = 3


def measure(name: str, size: int, *, threads: int, repeats: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = build_model(name, num_joints=14, depth=DEPTH).eval()
    x = torch.randn(1, 3, size, size)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    eager = optimize_for_inference(model, channels_last=True)
    xc = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        eager_ms = time_call(lambda: eager(xc), repeats=repeats, warmup=warmup)["median_ms"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.onnx"  # as `posedistill export` writes it: BN folded, last stack only
        export_onnx(build_model(name, num_joints=14, depth=DEPTH).eval(), path, input_size=size, check=False)
        session = ort_session(str(path), threads)
    xn = x.numpy()
    ort_ms = time_call(lambda: session.run(None, {INPUT_NAME: xn}), repeats=repeats, warmup=warmup)["median_ms"]
    return {"model": name, "input_size": size, "depth": DEPTH, "gmacs": counter.get_total_flops() / 2e9,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "eager_ms": eager_ms, "ort_ms": ort_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    capability = torch.backends.cpu.get_cpu_capability()
    rows = []
    print(f"CPU capability {capability}, {args.threads} thread(s), batch 1, median of {args.repeats}")
    print(f"{'model':<11}{'input':>6}{'GMACs':>8}{'params M':>10}{'eager ms':>10}{'ORT ms':>8}{'eager/ORT':>10}")
    for name, size in CANDIDATES:
        row = measure(name, size, threads=args.threads, repeats=args.repeats, warmup=args.warmup)
        rows.append(row)
        print(f"{name:<11}{size:>6}{row['gmacs']:>8.3f}{row['params_m']:>10.2f}{row['eager_ms']:>10.2f}"
              f"{row['ort_ms']:>8.2f}{row['eager_ms'] / row['ort_ms']:>10.2f}", flush=True)
    atomic_write_json(args.out, {"cpu_capability": capability, "threads": args.threads, "repeats": args.repeats,
                                 "torch": torch.__version__, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
