#!/usr/bin/env python
"""Training cost of the candidate teachers of issue 26: samples/s of one training step (forward, backward,
Adam; the engine's foreground-weighted loss) and the epoch time on the 8,800-image training set it implies.

Synthetic batches, batch 16, one process with ``--threads`` threads, bf16 autocast + channels_last where the CPU
runs bf16 natively (as ``train.amp: auto``), fp32 + channels_last otherwise. Run it on a quiet machine (pause
training runs with ``kill -STOP``). Prints a table, writes ``benchmarks/results/teacher_candidates.json``.

    python benchmarks/teacher_candidates.py [--threads 2] [--steps 6]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from posedistill.io import atomic_write_json
from posedistill.training.losses import HeatmapLoss
from posedistill.models import build_model
from posedistill.training.precision import cpu_has_fast_bf16

RESULTS = Path(__file__).resolve().parent / "results" / "teacher_candidates.json"
# (model, input size, hourglass depth): the shipped teacher, progressive resizing, more stacks, wider
CANDIDATES = (("hg4_128", 128, 3), ("hg4_128", 192, 3), ("hg4_128", 256, 4), ("hg8_128", 128, 3),
              ("hg4_256", 128, 3))
TRAIN_IMAGES = 8800


def measure(name: str, size: int, depth: int, *, steps: int, batch: int, bf16: bool) -> dict:
    torch.manual_seed(0)
    model = build_model(name, num_joints=14, depth=depth).to(memory_format=torch.channels_last).train()
    with FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, size, size))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = HeatmapLoss(10.0)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    target = torch.rand(batch, 14, size // 4, size // 4)
    weight = torch.ones(batch, 14)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        with ctx():
            out = model(x)
        loss = loss_fn([o.float() for o in out], target, weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    step = sorted(times)[len(times) // 2]
    rate = batch / step
    return {"model": name, "input_size": size, "depth": depth, "gmacs": counter.get_total_flops() / 2e9,
            "samples_per_s": rate, "epoch_min": TRAIN_IMAGES / rate / 60, "bf16": bf16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bf16 = cpu_has_fast_bf16()
    cpu = torch.backends.cpu.get_cpu_capability()
    rows = [measure(n, s, d, steps=args.steps, batch=args.batch, bf16=bf16) for n, s, d in CANDIDATES]
    print(f"training step, batch {args.batch}, {args.threads} threads, {'bf16' if bf16 else 'fp32'} + channels_last, "
          f"CPU {cpu}")
    print("| model | input | depth | GMACs | samples/s | epoch of 8,800 (min) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['input_size']} | {r['depth']} | {r['gmacs']:.3f} | {r['samples_per_s']:.1f} | "
              f"{r['epoch_min']:.1f} |")
    atomic_write_json(args.out, {"cpu": cpu, "threads": args.threads, "batch": args.batch, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
