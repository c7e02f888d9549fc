#!/usr/bin/env python
"""The network's time per person without and with flip test: what ``predict --flip`` costs.

One crop per LSPET test-slice person (the box of its visible joints), batch 1, through
:meth:`posedistill.inference.network.PoseNetwork.heatmaps` of the shipped student (default) in eager PyTorch, one
thread, after warm-up. The two settings alternate crop by crop, so a machine whose speed drifts (other jobs) slows
both alike; the ratio of the pair's times is the figure to trust on a busy machine. Also times the whole call of
:class:`~posedistill.inference.predictor.Predictor` with the box (crop + network + decoding). Prints the medians
and writes ``benchmarks/results/flip_cost.json``.

    python benchmarks/flip_cost.py                     # 200 people, 3 rounds
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from posedistill.data.scenes import default_lspet_root, joints_box, lspet_people
from posedistill.inference.predictor import Predictor
from posedistill.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "flip_cost.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="default: the shipped student")
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

    predictor = Predictor(args.weights, locate="none", threads=1)
    net = predictor.network
    people = lspet_people(default_lspet_root(), "test", args.people)
    images = [cv2.imread(str(r.image)) for r in people]
    boxes = [joints_box(r.joints, r.visible) for r in people]
    crops = [net.preprocess(img, box)[0][None] for img, box in zip(images, boxes)]
    for crop in crops[:args.warmup]:
        net.heatmaps(crop)
        net.heatmaps(crop, flip=True)

    times: dict[str, list[float]] = {"network": [], "network+flip": [], "call": [], "call+flip": []}
    load = os.getloadavg()[0]
    for r in range(args.rounds):
        for i, crop in enumerate(crops):
            order = (False, True) if (i + r) % 2 == 0 else (True, False)  # neither setting always runs first
            for flip in order:
                t = time.perf_counter()
                net.heatmaps(crop, flip=flip)
                times["network+flip" if flip else "network"].append(1e3 * (time.perf_counter() - t))
            for flip in order:
                t = time.perf_counter()
                predictor(images[i], [boxes[i]], flip=flip)
                times["call+flip" if flip else "call"].append(1e3 * (time.perf_counter() - t))
    load = (load + os.getloadavg()[0]) / 2
    med = {k: float(np.median(v)) for k, v in times.items()}
    pair = {k: float(np.median(np.array(times[k + "+flip"]) / np.array(times[k]))) for k in ("network", "call")}
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"{len(people)} LSPET test people x {args.rounds} rounds, batch 1, 1 thread, eager PyTorch "
          f"{torch.__version__}, get_cpu_capability() = {capability}, load average {load:.2f} "
          f"on {os.cpu_count()} cores; weights {net.weights.name}")
    print(f"{'':<10} {'no flip ms':>10} {'flip ms':>8} {'ratio of medians':>17} {'median pair ratio':>18}")
    for k in ("network", "call"):
        print(f"{k:<10} {med[k]:>10.2f} {med[k + '+flip']:>8.2f} {med[k + '+flip'] / med[k]:>17.2f} "
              f"{pair[k]:>18.2f}")
    atomic_write_json(args.out, {"weights": net.weights.name, "people": len(people), "rounds": args.rounds,
                                 "batch": 1, "threads": 1, "torch": torch.__version__, "cpu_capability": capability,
                                 "load_average": load, "cores": os.cpu_count(), "median_ms": med,
                                 "median_pair_ratio": pair})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
