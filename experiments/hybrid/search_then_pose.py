#!/usr/bin/env python
"""Find the person with one student, estimate the pose with another: LSPET people on their own photos, PCK@0.2
(no flip) and ms a photo of (a) the small student's own search, (b) the large student's own search, (c) the small
student's search, then the large student on the box it found (``refine="auto"``), (d) the same on the extent of
the small student's joints, and both students with the true box. Write-up: ``docs/inference.md``, "The person
finder".

    python experiments/hybrid/search_then_pose.py --split val --search runs/lspet8800/fpd_tiny_r2/best.pt \
        --pose runs/lspet8800/fpd_base_r2/best.pt
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from box_sensitivity import scored_people  # noqa: E402

from posedistill.data import lspet_split  # noqa: E402
from posedistill.inference.predictor import Predictor  # noqa: E402
from posedistill.inference.refine import BoxRefinement  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("POSEDISTILL_DATA", "../shared/data"))
                        / "lspet")
    parser.add_argument("--split", default="val")
    parser.add_argument("--search", required=True, help="the small student (its person scorer beside it)")
    parser.add_argument("--pose", required=True, help="the large student")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    records, images, scorer, gt = scored_people(lspet_split(args.data, args.split), args.limit)
    small = Predictor(args.search, locate="auto", threads=args.threads)
    large = Predictor(args.pose, locate="auto", threads=args.threads)
    for p in (small, large):  # warm-up
        p(images[0])
        p(images[0], [gt[0]])
    modes = {
        "small, true box": lambda i: small(images[i], [gt[i]]).keypoints[0],
        "large, true box": lambda i: large(images[i], [gt[i]]).keypoints[0],
        "small search": lambda i: small(images[i]).keypoints[0],
        "large search": lambda i: large(images[i]).keypoints[0],
        "small search, large on its box": lambda i: large(images[i], small(images[i]).boxes[:1]).keypoints[0],
        "small search, large on its joints' extent": lambda i: large(
            images[i], BoxRefinement.extent(small(images[i]).keypoints[:1])).keypoints[0],
    }
    rows = {}
    for name, fn in modes.items():
        pts, ms = [], []
        for i in range(len(records)):
            t = time.perf_counter()
            pts.append(fn(i))
            ms.append(1e3 * (time.perf_counter() - t))
        rows[name] = {"pck": scorer.mean_pck([np.stack(pts)]), "ms_median": float(np.median(ms))}
        print(f"{name:<45} PCK@0.2 {rows[name]['pck']:5.1f}   {rows[name]['ms_median']:6.1f} ms", flush=True)
    print(f"{args.split}: {len(records)} people with a visible torso; search {args.search}, pose {args.pose}; "
          f"{args.threads} thread(s), {torch.backends.cpu.get_cpu_capability()}")
    if args.out:
        args.out.write_text(json.dumps({"split": args.split, "search": args.search, "pose": args.pose,
                                        "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
