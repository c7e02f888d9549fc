#!/usr/bin/env python
"""Where the found box loses PCK (validation only): the student (no flip, one thread) on hybrids of the found box
and the true box (true centre + found size, found centre + true size), and PCK by the true box's size on the
letterboxed input and by the finder's confidence.

    python experiments/person_finder/diagnose.py --weights experiments/person_finder/finder.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from posedistill import Predictor  # noqa: E402
from posedistill.evaluation import PCK  # noqa: E402

from posedistill.data.person_canvases import joints_extent  # noqa: E402
from evaluate import load_set  # noqa: E402
from finder import DEFAULT_WEIGHTS, Finder, confident_box, scale_box, student_on_box  # noqa: E402


def with_centre(box, centre_from):
    cx, cy = centre_from[0] + centre_from[2] / 2, centre_from[1] + centre_from[3] / 2
    return np.array([cx - box[2] / 2, cy - box[3] / 2, box[2], box[3]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/lspet"))
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--box-scale", type=float, default=1.4)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "diagnose_val.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    finder, predictor, pck = Finder(args.weights), Predictor(threads=1), PCK(0.2)
    images, gt, vis, norm = load_set(args.data, "val", "photos", 0)
    true = [joints_extent(j, v) for j, v in zip(gt, vis)]
    found = [finder(img, top_k=1)[0] for img in images]
    fbox = [b for _, b in found]
    hybrids = {
        "true box": true,
        "found box": fbox,
        "true centre + found size": [with_centre(f, t) for f, t in zip(fbox, true)],
        "found centre + true size": [with_centre(t, f) for f, t in zip(fbox, true)],
    }
    result = {"box_scale": args.box_scale, "rows": {}}
    per_person = {}
    for name, boxes in hybrids.items():
        for refine in (0, 1):
            pts = []
            for img, b in zip(images, boxes):
                b = scale_box(b, 1.0 if name == "true box" else args.box_scale)
                p, s = student_on_box(predictor, img, b)
                if refine:
                    p, s = student_on_box(predictor, img, confident_box(p, s, b))
                pts.append(p)
            label = name + (" + refine" if refine else "")
            result["rows"][label] = pck(np.stack(pts), gt, vis, norm)["mean"]
            per_person[label] = np.stack(pts)
            print(f"{label:<36} PCK@0.2 {result['rows'][label]:.1f}", flush=True)
    # by the person's size on the finder's input (true box's longer side, input pixels) and finder confidence
    side = np.array([max(t[2:]) * finder.input_size / max(img.shape[:2]) for t, img in zip(true, images)])
    score = np.array([s for s, _ in found])
    for key, values, edges in (("true side (input px)", side, (0, 35, 55, 80, 1e9)),
                               ("finder score", score, (0, 0.3, 0.45, 0.6, 1.01))):
        result[key] = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (values >= lo) & (values < hi)
            if not sel.any():
                continue
            row = {"range": [lo, hi], "people": int(sel.sum())}
            for label in ("true box", "found box + refine"):
                row[label] = pck(per_person[label][sel], gt[sel], vis[sel], norm[sel])["mean"]
            result[key].append(row)
            print(f"{key} [{lo:g}, {hi:g}): {row['people']} people, true box {row['true box']:.1f}, "
                  f"found box + refine {row['found box + refine']:.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
