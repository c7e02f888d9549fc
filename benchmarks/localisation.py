#!/usr/bin/env python
"""Person localisation without a box: PCK@0.2 with the automatic box against the ground-truth box.

With ``--photos`` the people are found on their own LSPET photos as they are (what a user gives). Otherwise every
LSPET image of a split is placed at a random position and scale (the person's longer side 25-60 % of the
canvas's longer side) on a canvas 2-3 times the image's size, over another LSPET photo pixelated into coarse
blocks (real colours, no second person). The shipped student (or ``--weights``) then predicts with

* ``gt-box``: the ground-truth box (bounding box of the visible joints, as ``predict --bbox``);
* ``whole``: the whole canvas as the box (what ``predict`` did before it could localise);
* each localisation method (``finder`` where a person finder is shipped, ``pose``, and ``hog`` / ``both`` where
  OpenCV has its HOG detector); where a person
  scorer lies beside the weights (``python -m posedistill.inference.scorer_fit``), each method ranked by it, and ranked by
  confidence as ``<method>/conf`` beside it (``--no-scorer``: confidence only).

A localisation *fails* when its crop square holds less than half of the ground-truth box, or is more than 2.5
times the ground-truth crop's side (the person would be a few heatmap pixels). It *misses* when its box overlaps
the ground-truth box by IoU < 0.1; ``on photo`` is the share of the misses whose box centre lies on the pasted
photo rather than on the pixelated background (another person in the photo, or the photo's own background).
Rows ``<method>@N`` ask the localiser for up to N people (``predict --people N``) and score the one whose box
overlaps the ground truth most: whether the annotated person is among those returned, for a user who picks.
Tune on ``--split val``; report ``--split test``. Writes ``benchmarks/results/localisation_<split>[_photos].json``.
``ms/img`` is the time of each row per image (one thread by default; run it on a quiet machine).

    python benchmarks/localisation.py --split test                     # 500 images
    python benchmarks/localisation.py --split test --photos --methods finder,pose
    python benchmarks/localisation.py --split val --limit 100 --margin 1.2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from posedistill.data.scenes import default_lspet_root, inside, joints_box, lspet_people, scene_for

from posedistill.data.readers import lspet_split
from posedistill.evaluation import PCK
from posedistill.data.records import box_to_square
from posedistill.inference.predictor import Predictor
from posedistill.io import atomic_write_json
from posedistill.inference.finder import Finder
from posedistill.inference.localize import Localizer, box_iou, hog_available
from posedistill.inference.person_score import scorer_for

RESULTS = Path(__file__).resolve().parent / "results"


def coverage(auto: list[float], gt: list[float]) -> float:
    """Fraction of the ground-truth box inside the automatic crop square."""
    centre, side = box_to_square(auto)
    sq = [centre[0] - side / 2, centre[1] - side / 2, side, side]
    ix = max(0.0, min(sq[0] + sq[2], gt[0] + gt[2]) - max(sq[0], gt[0]))
    iy = max(0.0, min(sq[1] + sq[3], gt[1] + gt[3]) - max(sq[1], gt[1]))
    return ix * iy / (gt[2] * gt[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--limit", type=int, default=None, help="first N people of the split")
    parser.add_argument("--weights", default=None, help="checkpoint or ONNX (default: the shipped student)")
    parser.add_argument("--methods", default=None,
                        help="comma list among finder, pose, hog, both (default: all available)")
    parser.add_argument("--photos", action="store_true", help="the plain photos instead of the synthetic scenes")
    parser.add_argument("--margin", type=float, default=None)
    parser.add_argument("--keep-joints", type=int, default=None)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--refine-steps", type=int, default=None)
    parser.add_argument("--stability-power", type=float, default=None)
    parser.add_argument("--final-scales", default=None, help="comma list of box scales tried after refinement")
    parser.add_argument("--window-fractions", default=None,
                        help="comma list of window sides (fractions of the longer side) of the first pass's grid")
    parser.add_argument("--scorer-only", action="store_true", help="no '<method>/conf' rows")
    parser.add_argument("--no-scorer", action="store_true",
                        help="ignore the person scorer beside the weights (rank by confidence only)")
    parser.add_argument("--people", type=int, default=3,
                        help="also ask for up to N people (predict --people N) and score the one on the annotated "
                             "person (rows '<method>@N'; 1: off)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    root = default_lspet_root()
    people = lspet_people(root, args.split, args.limit)
    backgrounds = lspet_split(root, "train6500")  # the scenes of every earlier figure (before the 8,800-image split)
    predictor = Predictor(args.weights, locate="none", threads=args.threads)  # the given boxes' rows
    network = predictor.network  # the localisers of the method rows are built around it
    finder = Finder.shipped(threads=args.threads)
    methods = args.methods.split(",") if args.methods else (["finder"] if finder is not None else []) + ["pose"] + (
        ["hog", "both"] if hog_available() else [])
    scorer = None if args.no_scorer else scorer_for(network.weights, network.meta.num_joints)
    if scorer is not None and not args.scorer_only:  # each method ranked by the scorer, and by confidence ("<method>/conf") beside it
        methods = [m for name in methods for m in (name, f"{name}/conf")]
    overrides = {k: v for k, v in {"margin": args.margin, "keep_joints": args.keep_joints, "top_k": args.top_k,
                                   "refine_steps": args.refine_steps,
                                   "stability_power": args.stability_power,
                                   "final_scales": tuple(float(f) for f in args.final_scales.split(","))
                                   if args.final_scales else None,
                                   "window_fractions": tuple(float(f) for f in args.window_fractions.split(","))
                                   if args.window_fractions else None}.items() if v is not None}
    anyof = [f"{name}@{args.people}" for name in methods] if args.people > 1 else []
    localizers = {name: Localizer(network, method=name.partition("@")[0].partition("/")[0], finder=finder,
                                  scorer=None if name.partition("@")[0].partition("/")[2] else scorer,
                                  max_people=args.people if name in anyof else 1, **overrides)
                  for name in [*methods, *anyof]}
    pred = {name: [] for name in ["gt-box", "whole", *methods, *anyof]}
    boxes = {name: [] for name in [*methods, *anyof]}
    seconds = {name: 0.0 for name in pred}
    gts, vis, norms, gt_boxes, photos = [], [], [], [], []
    for i, rec in enumerate(people):
        if args.photos:
            canvas, joints, norm = cv2.imread(str(rec.image), cv2.IMREAD_COLOR), rec.joints, rec.norm
            photo = [0.0, 0.0, float(canvas.shape[1]), float(canvas.shape[0])]
        else:
            canvas, joints, norm, photo = scene_for(rec, backgrounds, args.seed)
        gt_box = joints_box(joints, rec.visible)
        gts.append(joints), vis.append(rec.visible), norms.append(norm), gt_boxes.append(gt_box)
        photos.append(photo)
        h, w = canvas.shape[:2]
        for name, box in (("gt-box", gt_box), ("whole", [0.0, 0.0, float(w), float(h)])):
            t = time.perf_counter()
            out = predictor(canvas, [box])
            seconds[name] += time.perf_counter() - t
            pred[name].append(out.keypoints[0])
        for name in methods:
            t = time.perf_counter()
            found = localizers[name].locate(canvas)
            seconds[name] += time.perf_counter() - t
            pred[name].append(found.keypoints[0])
            boxes[name].append(found.boxes[0].tolist())
        for name in anyof:  # the returned person the user would pick: the one on the annotated person
            t = time.perf_counter()
            found = localizers[name].locate(canvas)
            seconds[name] += time.perf_counter() - t
            pick = max(range(len(found)), key=lambda j: box_iou(found.boxes[j], gt_box))
            pred[name].append(found.keypoints[pick])
            boxes[name].append(found.boxes[pick].tolist())
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{len(people)}", flush=True)
    gt, visible, norm = np.array(gts), np.array(vis), np.array(norms)
    pck = PCK(0.2)
    rows = []
    for name, p in pred.items():
        row = {"method": name, "pck": pck(np.array(p), gt, visible, norm)["mean"],
               "ms_per_image": 1e3 * seconds[name] / len(people)}
        if name in boxes:
            cov = np.array([coverage(a, g) for a, g in zip(boxes[name], gt_boxes)])
            ratio = np.array([box_to_square(a)[1] / box_to_square(g)[1] for a, g in zip(boxes[name], gt_boxes)])
            row["failure_rate"] = float(np.mean((cov < 0.5) | (ratio > 2.5)))
            row["mean_iou"] = float(np.mean([box_iou(a, g) for a, g in zip(boxes[name], gt_boxes)]))
            row["median_side_ratio"] = float(np.median(ratio))
            miss = np.array([box_iou(a, g) < 0.1 for a, g in zip(boxes[name], gt_boxes)])
            row["miss_rate"] = float(np.mean(miss))  # the box is elsewhere: on the photo (another person?) or not
            row["misses_on_photo"] = float(np.mean([inside(a, p) for a, p, m in zip(boxes[name], photos, miss) if m])
                                           if miss.any() else 0.0)
        rows.append(row)
    ref = rows[0]["pck"]
    where = "on their own photos" if args.photos else "on synthetic canvases"
    print(f"LSPET {args.split}: {len(people)} people {where}, PCK@0.2 by torso; weights "
          f"{network.weights.name}; localiser {overrides or 'defaults'}")
    print(f"{'method':<10} {'PCK@0.2':>8} {'vs gt':>7} {'fail %':>7} {'IoU':>6} {'side/gt':>8} {'miss %':>7} "
          f"{'on photo':>8} {'ms/img':>8}")
    for r in rows:
        fail = f"{100 * r['failure_rate']:.1f}" if "failure_rate" in r else "-"
        iou = f"{r['mean_iou']:.2f}" if "mean_iou" in r else "-"
        side = f"{r['median_side_ratio']:.2f}" if "median_side_ratio" in r else "-"
        miss = f"{100 * r['miss_rate']:.1f}" if "miss_rate" in r else "-"
        photo = f"{100 * r['misses_on_photo']:.0f}%" if "misses_on_photo" in r else "-"
        print(f"{r['method']:<10} {r['pck']:>8.1f} {r['pck'] - ref:>+7.1f} {fail:>7} {iou:>6} {side:>8} {miss:>7} "
              f"{photo:>8} {r['ms_per_image']:>8.1f}")
    out = args.out or RESULTS / f"localisation_{args.split}{'_photos' if args.photos else ''}.json"
    atomic_write_json(out, {"split": args.split, "photos": args.photos, "people": len(people),
                            "weights": str(network.weights.name), "finder": finder and finder.weights.name,
                            "cpu": torch.backends.cpu.get_cpu_capability(), "threads": args.threads,
                            "localiser": overrides, "person_scorer": scorer.info if scorer else None, "seed": args.seed, "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
