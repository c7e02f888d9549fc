"""Where a teacher's out-of-range heatmap values come from (issue 12, run 2).

A 10-epoch hg4_128 teacher at 64 input emitted heatmap values from -5.8 to 10 on some augmented training crops,
in eval mode, while the targets lie in [0, 1]. This script runs a teacher checkpoint on the students' augmented
training crops and reports, for several ways of running it, how often a crop's heatmaps leave [-0.5, 1.5]
("outlier crops"), the extreme values, and the MSE to the ground truth:

* ``eval``: eval mode, BatchNorm with its running statistics (how the teacher is run for FPD);
* ``train_bn``: BatchNorm with the batch's own statistics (how the network saw these crops in training);
* ``recalibrated``: eval mode after re-estimating the BatchNorm running statistics as an exact average over
  ``--recal-batches`` augmented training batches (``posedistill.training.bn_recalibration``).

It also splits the eval-mode outliers by augmentation (padding in the crop, rotation, scale, colour jitter), so
the cause can be read off the table. Prints tables and writes benchmarks/results/teacher_outliers.json;
``--figure PNG`` draws the crops with the most extreme eval-mode values beside their ground-truth and teacher
heatmaps (maximum over joints, each with its value range), so the "before" and "after" can be looked at.

    python benchmarks/teacher_outliers.py --teacher runs/lspet128/teacher_hg4_128_restart/best.pt \
        --config configs/experiments/cpu/teacher_hg4_128.yaml [--samples 512] [--recal-batches 50] [--figure out.png]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from posedistill.models.checkpoint import model_from_checkpoint
from posedistill.config import load_config
from posedistill.data import build_loader
from posedistill.data.transforms import denormalize_image
from posedistill.io import atomic_write_json
from posedistill.training.bn_recalibration import recalibrate_batchnorm
from posedistill.training.teacher_files import training_dataset

ROOT = Path(__file__).resolve().parents[1]
LOW, HIGH = -0.5, 1.5


@torch.no_grad()
def run_teacher(model, loader, *, train_bn: bool) -> dict[str, np.ndarray]:
    model.eval()
    if train_bn:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.train()
                m.momentum = 0.0  # use batch statistics, leave the running ones untouched
    lo, hi, mse, pad = [], [], [], []
    for batch in loader:
        hm = model(batch["image"])[-1].float()
        lo.append(hm.amin(dim=(1, 2, 3)))
        hi.append(hm.amax(dim=(1, 2, 3)))
        w = batch["target_weight"][:, :, None, None]
        mse.append(((hm - batch["target"]) ** 2 * w).mean(dim=(1, 2, 3)))
        # padding: pixels the crop took from outside the image are exactly 0 before normalisation, so all
        # three normalised channels sit at -mean/std
        img = batch["image"]
        pad.append((img[:, 0] < -2.11).float().mean(dim=(1, 2)))
    return {k: torch.cat(v).numpy() for k, v in (("min", lo), ("max", hi), ("mse", mse), ("pad", pad))}


def summary(name: str, r: dict[str, np.ndarray]) -> dict:
    out = (r["min"] < LOW) | (r["max"] > HIGH)
    row = {"mode": name, "crops": int(len(out)), "outlier_crops": int(out.sum()),
           "outlier_fraction": float(out.mean()), "min": float(r["min"].min()), "max": float(r["max"].max()),
           "mse_to_gt": float(r["mse"].mean())}
    print(f"{name:<14}{row['crops']:>7}{row['outlier_fraction']:>10.1%}{row['min']:>9.2f}{row['max']:>9.2f}"
          f"{row['mse_to_gt']:>11.4f}")
    return row


@torch.no_grad()
def draw_worst(model, subset, ev: dict[str, np.ndarray], path: Path, *, title: str, count: int = 4) -> list[int]:
    """Crops with the most extreme eval-mode values (distance outside [0, 1]): image, ground truth, teacher."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    excess = np.maximum(-ev["min"], ev["max"] - 1.0)
    worst = [int(i) for i in np.argsort(-excess)[:count]]
    batch = torch.utils.data.default_collate([subset[i] for i in worst])
    hm = model.eval()(batch["image"])[-1].float()
    fig, axes = plt.subplots(count, 3, figsize=(7.5, 2.5 * count), squeeze=False)
    for row, i in enumerate(worst):
        meta = subset.dataset.meta  # the pixel record the crops were made with
        img = denormalize_image(batch["image"][row].numpy(), mean=meta.mean, std=meta.std)[:, :, ::-1]  # BGR -> RGB
        gt, th = batch["target"][row].amax(0).numpy(), hm[row].amax(0).numpy()
        t_lo, t_hi = float(hm[row].min()), float(hm[row].max())
        for ax, pic, name in ((axes[row, 0], img, f"crop {i}"), (axes[row, 1], gt, "ground truth, max over joints"),
                              (axes[row, 2], th, f"teacher (eval): {t_lo:.2f} .. {t_hi:.2f}")):
            ax.imshow(pic, **({} if pic.ndim == 3 else {"cmap": "magma"}))
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True, help="the student's config (augmentation, input)")
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--recal-batches", type=int, default=50)
    parser.add_argument("--epoch", type=int, default=0, help="augmentation epoch of the inspected crops")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "teacher_outliers.json")
    parser.add_argument("--figure", type=Path, default=None, help="PNG of the most extreme crops")
    args = parser.parse_args()
    cfg = load_config(args.config)
    dataset, _ = training_dataset(cfg)
    dataset.set_epoch(args.epoch)
    subset = torch.utils.data.Subset(dataset, list(range(0, len(dataset), max(1, len(dataset) // args.samples))))
    subset.set_epoch = dataset.set_epoch  # type: ignore[attr-defined]
    loader = torch.utils.data.DataLoader(subset, batch_size=16, shuffle=False, num_workers=0)
    teacher, _ = model_from_checkpoint(args.teacher)
    print(f"{'mode':<14}{'crops':>7}{'outliers':>10}{'min':>9}{'max':>9}{'MSE to GT':>11}")
    results = {"eval": run_teacher(teacher, loader, train_bn=False)}
    rows = [summary("eval", results["eval"])]
    results["train_bn"] = run_teacher(copy.deepcopy(teacher), loader, train_bn=True)
    rows.append(summary("train_bn", results["train_bn"]))
    recal = copy.deepcopy(teacher)
    train_loader = build_loader(dataset, batch_size=16, shuffle=True, num_workers=0, seed=cfg.seed + 1)
    recalibrate_batchnorm(recal, train_loader, max_batches=args.recal_batches)
    results["recalibrated"] = run_teacher(recal, loader, train_bn=False)
    rows.append(summary("recalibrated", results["recalibrated"]))

    ev = results["eval"]
    out = (ev["min"] < LOW) | (ev["max"] > HIGH)
    padded = ev["pad"] > 0.02
    split = {"padded_crops": {"crops": int(padded.sum()), "outlier_fraction": float(out[padded].mean()) if padded.any() else None},
             "unpadded_crops": {"crops": int((~padded).sum()),
                                "outlier_fraction": float(out[~padded].mean()) if (~padded).any() else None}}
    print(f"eval-mode outliers: {split['padded_crops']['outlier_fraction']:.1%} of {split['padded_crops']['crops']} crops "
          f"with > 2% padding, {split['unpadded_crops']['outlier_fraction']:.1%} of {split['unpadded_crops']['crops']} "
          f"without")
    worst = None
    if args.figure is not None:
        worst = draw_worst(teacher, subset, ev, args.figure, title=f"{args.teacher.name} on {args.config.name} "
                           "crops: the 4 with the most extreme eval-mode values")
        print(f"wrote {args.figure}")
    atomic_write_json(args.out, {"teacher": str(args.teacher), "config": str(args.config), "range": [LOW, HIGH],
                                 "rows": rows, "by_padding": split, "figure_crops": worst,
                                 "command": "python benchmarks/teacher_outliers.py " + " ".join(
                                     f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out" and v is not None)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
