#!/usr/bin/env python
"""PCK@0.2 against the box a detector would give: loose, tight or shifted boxes, for each shipped model.

The reference box is the extent of the person's visible joints (``[x, y, w, h]``, before the predictor's own
1.25 padding). Each setting scales it about its centre (0.9 ... 1.6) or shifts its centre by a fraction of its
longer side (left, right, up, down: the mean of the four), then runs the predictor (no flip, as ``predict``)
with that box. ``--refine`` adds the same settings with one refinement pass: a second crop on the box of the
network's own joints (what :mod:`posedistill` would do when a detector's box is loose). Prints a table of PCK
and its loss against the joints' own box, writes JSON (``benchmarks/results/box_sensitivity_<split>.json``).

    python benchmarks/box_sensitivity.py --split val --refine          # choices are made on validation
    python benchmarks/box_sensitivity.py --split test --refine         # the figures to report
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from posedistill.inference.network import PoseNetwork
from posedistill.data import lspet_split
from posedistill.data.scenes import joints_box
from posedistill.evaluation import PCK
from posedistill.io import atomic_write_json
from posedistill.models.pretrained import default_weights

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = (0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)
SHIFTS = (0.1, 0.2)
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def transform_box(box: np.ndarray, *, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """``box`` scaled by ``scale`` about its centre, the centre moved by ``shift`` x its longer side."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    side = max(box[2], box[3])
    cx, cy = cx + shift[0] * side, cy + shift[1] * side
    w, h = box[2] * scale, box[3] * scale
    return np.array([cx - w / 2, cy - h / 2, w, h])


def refined_boxes(keypoints: np.ndarray, scores: np.ndarray, boxes: np.ndarray, *, min_score: float = 0.1,
                  min_joints: int = 4) -> np.ndarray:
    """Boxes of each person's confident joints (score >= ``min_score``); the given box where fewer than
    ``min_joints`` are confident."""
    out = boxes.copy()
    for i, (pts, s) in enumerate(zip(keypoints, scores)):
        keep = s >= min_score
        if keep.sum() >= min_joints:
            out[i] = joints_box(pts, keep)
    return out


def run_setting(pred: PoseNetwork, images: list[np.ndarray], boxes: np.ndarray, *, refine: bool,
                batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, K, 2) and scores (N, K) of each image's one box (after one refinement pass if asked)."""
    def once(bxs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pts, scs = [], []
        for start in range(0, len(images), batch):
            crops, mats = zip(*(pred.preprocess(img, b) for img, b in
                                zip(images[start:start + batch], bxs[start:start + batch])))
            p, s = pred.estimate(np.stack(crops), np.stack(mats))
            pts.append(p)
            scs.append(s)
        return np.concatenate(pts), np.concatenate(scs)

    pts, scores = once(boxes)
    if refine:
        pts, scores = once(refined_boxes(pts, scores, boxes))
    return pts, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/lspet"))
    parser.add_argument("--split", default="val", help="val (choices) or test (figures)")
    parser.add_argument("--weights", action="append", default=None,
                        help="checkpoint or ONNX file (repeatable; default: the shipped student and teacher)")
    parser.add_argument("--refine", action="store_true", help="also measure one refinement crop")
    parser.add_argument("--limit", type=int, default=0, help="first N people only (0: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    records = [r for r in lspet_split(args.data, args.split) if np.isfinite(r.norm) and (r.visible > 0).sum() >= 2]
    if args.limit:
        records = records[:args.limit]
    images = [cv2.imread(str(r.image), cv2.IMREAD_COLOR) for r in records]
    gt = np.stack([r.joints for r in records])
    vis = np.stack([r.visible for r in records])
    norm = np.array([r.norm for r in records])
    base = np.array([joints_box(r.joints, r.visible) for r in records])
    settings = [(f"scale {s:.1f}", [transform_box(b, scale=s) for b in base]) for s in SCALES]
    for f in SHIFTS:
        settings.append((f"shift {f:.1f}", [[transform_box(b, shift=(f * dx, f * dy)) for b in base]
                                            for dx, dy in DIRECTIONS]))
    weights = args.weights or [str(default_weights(role="student")), str(default_weights(role="teacher"))]
    pck = PCK(0.2)
    rows = []
    for w in weights:
        pred = PoseNetwork.load(w, threads=args.threads)
        for refine in ((False, True) if args.refine else (False,)):
            reference = None
            for name, boxes in tqdm(settings, desc=f"{Path(w).name}{' refined' if refine else ''}", leave=False):
                variants = boxes if name.startswith("shift") else [boxes]
                start = time.perf_counter()
                values = [pck(run_setting(pred, images, np.asarray(b), refine=refine)[0], gt, vis, norm)["mean"]
                          for b in variants]
                value = float(np.mean(values))
                if name == "scale 1.0":
                    reference = value
                rows.append({"weights": Path(w).name, "refine": refine, "setting": name, "pck": value,
                             "s": time.perf_counter() - start})
            for r in rows:
                if r["weights"] == Path(w).name and r["refine"] == refine:
                    r["loss"] = reference - r["pck"]
    print(f"\nPCK@0.2 (no flip) on LSPET {args.split}, {len(records)} people; box = joints' extent x scale, or "
          f"its centre shifted by a fraction of its side (mean of 4 directions); CPU "
          f"{torch.backends.cpu.get_cpu_capability()}\n")
    print("| weights | refine | " + " | ".join(name for name, _ in settings) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in settings) + " |")
    for w in weights:
        for refine in ((False, True) if args.refine else (False,)):
            cells = [r for r in rows if r["weights"] == Path(w).name and r["refine"] == refine]
            print(f"| {Path(w).name} | {'yes' if refine else 'no'} | "
                  + " | ".join(f"{r['pck']:.1f} ({-r['loss']:+.1f})" for r in cells) + " |")
    out = args.out or RESULTS / f"box_sensitivity_{args.split}.json"
    atomic_write_json(out, {"split": args.split, "people": len(records), "scales": SCALES, "shifts": SHIFTS,
                            "cpu": torch.backends.cpu.get_cpu_capability(), "rows": rows})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
