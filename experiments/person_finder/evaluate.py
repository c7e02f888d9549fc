#!/usr/bin/env python
"""Evaluate the person finder with the shipped student (``posedistill.Predictor(refine=False)``, no flip, one
thread; ``--backend``: the student's backend, torch by default as for the prototype's figures).

On the LSPET photos of a split (``photos``: the plain photo, what a user gives) and on the same people's synthetic
scenes of ``benchmarks/scenes.py`` (``scenes``, seed 14 as ``benchmarks/localisation.py``):

* the finder's top box against the true box (extent of the visible joints): mean IoU, share with IoU >= 0.5,
  misses (IoU < 0.1);
* student PCK@0.2 (torso) with the true box, the whole image, the found box (scaled by each ``--box-scales``
  factor), each with and without one refinement crop (re-crop on the extent of the student's joints scored
  >= 0.1, at least 4 of them; the first-look rule of benchmarks/box_sensitivity.py, which the product's
  ``Predictor(refine=...)``, :mod:`posedistill.inference.refine`, replaced).

``--timing``: photo -> keypoints latency on one thread over the split's photos (images in memory; JPEG decoding
timed apart), batch 1 after warm-up: finder alone, the whole path with and without refinement, and the student
on the true box, all in the same run. Choices are made on ``--split val``; ``--split test`` reports.

    python experiments/person_finder/evaluate.py --split val --box-scales 1.0,1.1,1.2 --timing
    python experiments/person_finder/evaluate.py --split test --box-scales 1.1 --timing
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from posedistill import Predictor  # noqa: E402
from posedistill.data import lspet_split  # noqa: E402
from posedistill.evaluation import PCK  # noqa: E402

from posedistill.data.person_canvases import joints_extent  # noqa: E402
from finder import DEFAULT_WEIGHTS, Finder, confident_box, photo_to_keypoints, scale_box, student_on_box  # noqa: E402
from posedistill.data.records import box_iou  # noqa: E402
from valsets import scenes  # noqa: E402


def load_set(root: Path, split: str, name: str, limit: int):
    """(images, joints (N,14,2), visible (N,14), norm (N,))."""
    if name == "photos":
        recs = [r for r in lspet_split(root, split) if (r.visible > 0).sum() >= 2][:limit or None]
        return ([cv2.imread(str(r.image), cv2.IMREAD_COLOR) for r in recs], np.stack([r.joints for r in recs]),
                np.stack([r.visible for r in recs]), np.array([r.norm for r in recs]))
    items = list(scenes(root, split))[:limit or None]
    return ([c for c, *_ in items], np.stack([j for _, j, _, _ in items]), np.stack([v for *_, v in items]),
            np.array([n for _, _, n, _ in items]))


def pck_rows(finder, predictor, images, gt, vis, norm, box_scales, max_refine=2):
    pck = PCK(0.2)
    true_boxes = [joints_extent(j, v) for j, v in zip(gt, vis)]
    found = [finder(img, top_k=1)[0] for img in images]
    iou = np.array([box_iou(f[1], t) for f, t in zip(found, true_boxes)])
    settings = {"true box": true_boxes,
                "whole image": [np.array([0.0, 0.0, img.shape[1], img.shape[0]]) for img in images]}
    for f in box_scales:
        settings[f"found x{f:g}"] = [scale_box(b, f) for _, b in found]
    rows = {}
    for name, boxes in settings.items():
        pts = [[] for _ in range(max_refine + 1)]  # after 0, 1, 2 ... refinement crops
        for img, box in zip(images, boxes):
            p, s = student_on_box(predictor, img, box)
            pts[0].append(p)
            for k in range(1, max_refine + 1):
                box = confident_box(p, s, box)
                p, s = student_on_box(predictor, img, box)
                pts[k].append(p)
        for k in range(max_refine + 1):
            label = name + ("" if k == 0 else " + refine" if k == 1 else f" + refine x{k}")
            rows[label] = pck(np.stack(pts[k]), gt, vis, norm)["mean"]
    ratio = np.array([max(f[1][2:]) / max(t[2:]) for f, t in zip(found, true_boxes)])
    boxes = {"mean_iou": float(iou.mean()), "iou>=0.5": float((iou >= 0.5).mean()),
             "miss(iou<0.1)": float((iou < 0.1).mean()), "median_side_ratio": float(np.median(ratio))}
    return rows, boxes


def timing(finder, predictor, root, split, box_scale, limit, warmup=20):
    recs = [r for r in lspet_split(root, split) if (r.visible > 0).sum() >= 2][:limit or None]
    decode_s, images = [], []
    for r in recs:
        t = time.perf_counter()
        images.append(cv2.imread(str(r.image), cv2.IMREAD_COLOR))
        decode_s.append(time.perf_counter() - t)
    true_boxes = [joints_extent(r.joints, r.visible) for r in recs]
    out = {"photos": len(images), "jpeg_decode_ms_median": 1e3 * float(np.median(decode_s))}

    def stats(xs):
        xs = 1e3 * np.array(xs[warmup:])
        return {"median": float(np.median(xs)), "p90": float(np.percentile(xs, 90)), "mean": float(xs.mean())}

    for img in images[:warmup]:  # warm-up of both networks
        photo_to_keypoints(finder, predictor, img, box_scale=box_scale, refine=True)
    # interleave the variants photo by photo, so that the machine's load falls on all of them alike
    acc = {k: [] for k in ("finder", "student on true box", "path", "path + refine", "path find", "path pose",
                           "refine crop")}
    for img, tb in zip(images, true_boxes):
        t = time.perf_counter()
        finder(img, top_k=1)
        acc["finder"].append(time.perf_counter() - t)
        t = time.perf_counter()
        student_on_box(predictor, img, tb)
        acc["student on true box"].append(time.perf_counter() - t)
        times = {}
        photo_to_keypoints(finder, predictor, img, box_scale=box_scale, refine=False, times=times)
        acc["path"].append(times["total"])
        acc["path find"].append(times["find"])
        acc["path pose"].append(times["pose"])
        photo_to_keypoints(finder, predictor, img, box_scale=box_scale, refine=True, times=times)
        acc["path + refine"].append(times["total"])
        acc["refine crop"].append(times["refine"])
    out.update({k: stats([0.0] * warmup + v) for k, v in acc.items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/lspet"))
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--box-scales", default="1.0,1.1,1.2")
    ap.add_argument("--sets", default="photos,scenes")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--max-refine", type=int, default=2, help="PCK after 0 ... N refinement crops")
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--timing-scale", type=float, default=None, help="box scale of the timed path (default: first)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--backend", default="torch", choices=["torch", "onnx"],
                    help="the student's backend (figures before the ONNX default were torch)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    finder = Finder(args.weights)
    predictor = Predictor(threads=1, backend=args.backend, refine=False)
    scales = [float(s) for s in args.box_scales.split(",")]
    result = {"split": args.split, "weights": str(args.weights), "student": predictor.network.weights.name,
              "cpu": torch.backends.cpu.get_cpu_capability()}
    for name in filter(None, args.sets.split(",")):
        images, gt, vis, norm = load_set(args.data, args.split, name, args.limit)
        t = time.time()
        rows, boxes = pck_rows(finder, predictor, images, gt, vis, norm, scales, args.max_refine)
        result[name] = {"people": len(images), "pck": rows, "box": boxes}
        print(f"\n== {name} ({args.split}, {len(images)} people, {time.time() - t:.0f} s): found box: mean IoU "
              f"{boxes['mean_iou']:.3f}, IoU>=0.5 {100 * boxes['iou>=0.5']:.1f} %, misses {100 * boxes['miss(iou<0.1)']:.1f} %,"
              f" median side ratio {boxes['median_side_ratio']:.2f}")
        ref = rows["true box"]
        for k, v in rows.items():
            print(f"  {k:<24} PCK@0.2 {v:5.1f}  ({v - ref:+.1f} vs true box)")
    if args.timing:
        result["timing_ms"] = timing(finder, predictor, args.data, args.split, args.timing_scale or scales[0],
                                     args.limit)
        print(f"\n== timing, one thread, {args.split} photos (ms; median / p90):")
        for k, v in result["timing_ms"].items():
            print(f"  {k:<22} " + (f"{v['median']:.2f} / {v['p90']:.2f}" if isinstance(v, dict) else f"{v}"))
    out = args.out or HERE / "results" / f"eval_{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
