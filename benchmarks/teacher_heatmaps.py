"""What a teacher's heatmaps give a student: amplitude and location against the ground truth's.

FPD (Zhang, Zhu, Ye, CVPR 2019) trains the student towards ``alpha * teacher + (1 - alpha) * ground truth``
heatmaps. This script reads the teacher's heatmaps for the students' augmented training samples from a teacher
cache (``posedistill.training.teacher_cache``) and compares them, per visible joint, with the ground-truth
heatmaps of the same samples: mean peak value, the argmax distance in heatmap pixels (median, and the fraction
within 1 px), and the MSE of the teacher's map and of a blank map to the ground truth. Prints a table and writes
benchmarks/results/teacher_heatmaps.json.

    python benchmarks/teacher_heatmaps.py --config configs/experiments/cpu/fpd_hg2_64.yaml --cache runs/cpu/teacher_cache
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from posedistill.config import load_config
from posedistill.io import atomic_write_json
from posedistill.training.teacher_cache import TeacherCache
from posedistill.training.teacher_files import training_dataset

ROOT = Path(__file__).resolve().parents[1]


def _argmax_xy(h: torch.Tensor) -> torch.Tensor:
    n, k, _, w = h.shape
    flat = h.reshape(n, k, -1).argmax(-1)
    return torch.stack([flat % w, flat // w], -1).float()


def compare(cache: TeacherCache, dataset, epoch: int, indices: list[int]) -> dict:
    items = [dataset[(epoch, i)] for i in indices]
    gt = torch.stack([torch.as_tensor(it["target"]) for it in items])
    vis = torch.stack([torch.as_tensor(it["target_weight"]) for it in items]).reshape(len(items), -1) > 0
    teacher = cache.heatmaps(epoch, indices)
    dist = (_argmax_xy(teacher) - _argmax_xy(gt)).norm(dim=-1)[vis]
    mse = ((teacher - gt) ** 2).mean(dim=(2, 3))[vis]
    blank = (gt ** 2).mean(dim=(2, 3))[vis]
    return {"epoch": epoch, "samples": len(indices), "joints": int(vis.sum()),
            "teacher_peak": float(teacher.amax(dim=(2, 3))[vis].mean()),
            "gt_peak": float(gt.amax(dim=(2, 3))[vis].mean()),
            "argmax_dist_median_px": float(dist.median()), "argmax_within_1px": float((dist <= 1).float().mean()),
            "mse_teacher_gt": float(mse.mean()), "mse_blank_gt": float(blank.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the students' config (the one the cache was built for)")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--samples", type=int, default=256, help="samples per epoch, evenly spread")
    parser.add_argument("--epochs", default="0,-1", help="cached epochs to read (-1: the last)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "teacher_heatmaps.json"))
    args = parser.parse_args()
    cfg = load_config(args.config)
    cache = TeacherCache(args.cache)
    dataset, _ = training_dataset(cfg)
    done = cache.epochs_done()
    epochs = sorted({int(e) % done for e in args.epochs.split(",")})
    indices = np.linspace(0, len(dataset) - 1, min(args.samples, len(dataset))).round().astype(int).tolist()
    rows = [compare(cache, dataset, e, indices) for e in epochs]
    print(f"teacher cache {args.cache} ({cache.meta['teacher']['path']}), {len(indices)} samples per epoch")
    print("| epoch | teacher peak | GT peak | argmax dist median (px) | within 1 px | MSE teacher-GT | MSE blank-GT |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['epoch']} | {r['teacher_peak']:.3f} | {r['gt_peak']:.3f} | {r['argmax_dist_median_px']:.2f} | "
              f"{r['argmax_within_1px']:.3f} | {r['mse_teacher_gt']:.4f} | {r['mse_blank_gt']:.4f} |")
    atomic_write_json(args.out, {"command": "python benchmarks/teacher_heatmaps.py --config " + args.config
                                 + " --cache " + args.cache, "teacher": cache.meta["teacher"], "rows": rows})


if __name__ == "__main__":
    main()
