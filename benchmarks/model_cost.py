"""Cost of the Hourglass family: stacks x channels grid at 256 and 128 input.

Prints parameters, GMACs (torch.utils.flop_counter, MACs = FLOPs / 2) and batch-1 eager CPU latency, and
writes benchmarks/results/model_cost.json.

    python benchmarks/model_cost.py [--threads 2] [--repeats 5] [--sizes 256,128]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from posedistill.io import atomic_write_json
from posedistill.models.registry import CHANNEL_CHOICES, STACK_CHOICES
from posedistill.bench.profiling import profile_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256,128")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "model_cost.json")
    args = parser.parse_args()
    names = [f"hg{s}_{c}" for s in STACK_CHOICES for c in CHANNEL_CHOICES]
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows += profile_models(names, input_size=size, threads=args.threads, repeats=args.repeats,
                               warmup=args.warmup)
    print(f"{'model':<10}{'input':>6}{'params(M)':>11}{'GMACs':>9}{'latency(ms)':>13}{'GMAC/s':>9}")
    for r in rows:
        print(f"{r['name']:<10}{r['input_size']:>6}{r['params'] / 1e6:>11.2f}{r['gmacs']:>9.3f}"
              f"{r['latency_ms']:>13.1f}{r['gmacs'] / r['latency_ms'] * 1e3:>9.1f}")
    atomic_write_json(args.out, {"machine": platform.processor() or platform.machine(),
                                 "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
