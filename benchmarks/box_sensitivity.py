#!/usr/bin/env python
"""PCK@0.2 against the box a detector would give (loose, tight or shifted), without and with the predictor's
re-crop on the network's own joints (``Predictor(refine=...)``).

The reference box is the extent of the person's visible joints (``[x, y, w, h]``, before the model's own 1.25
padding). Each setting scales it about its centre (0.9 ... 1.6), shifts its centre by a fraction of its longer
side (left, right, up, down: the mean of the four), or makes it the square about its centre (``square``: the same
crop for the network, a different box for the re-crop's rule), then runs :meth:`Predictor.estimate
<posedistill.inference.predictor.Predictor.estimate>` (no flip, as ``predict``) with that box, three times:
``refine=False`` (the first pass only), ``"auto"`` (the shipped rule: a second crop when the joints' extent
disagrees with the box) and True (always a second crop). Every loss is against the joints' own box without
refinement; "re-cropped" is the share of people that got the second crop, i.e. the extra network passes per
person. ``--sweep`` also prints the rule's choices on the same passes: the IoU threshold of ``"auto"`` and the
margin of the second crop (each margin one more run of ``refine=True``), which is how the defaults of
:class:`~posedistill.inference.refine.BoxRefinement` were chosen on ``--split val``. People whose torso joints are
not visible are not scored (the project's PCK rule); the split's count and the scored count are printed.
Writes ``benchmarks/results/box_sensitivity_<split>.json``.

    python benchmarks/box_sensitivity.py --split val --sweep        # the choices, on validation
    python benchmarks/box_sensitivity.py --split test               # the figures to report, once
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from posedistill.data import lspet_split
from posedistill.data.scenes import joints_box
from posedistill.evaluation import PairedPCK
from posedistill.inference.predictor import Predictor
from posedistill.inference.refine import squares
from posedistill.io import atomic_write_json
from posedistill.models.pretrained import default_weights, shipped_students

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = (0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)
SHIFTS = (0.1, 0.2)
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))
THRESHOLDS = (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
MARGINS = (0.8, 0.9, 1.0)


def transform_box(box: np.ndarray, *, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """``box`` scaled by ``scale`` about its centre, the centre moved by ``shift`` x its longer side."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    side = max(box[2], box[3])
    cx, cy = cx + shift[0] * side, cy + shift[1] * side
    w, h = box[2] * scale, box[3] * scale
    return np.array([cx - w / 2, cy - h / 2, w, h])


def settings_of(base: np.ndarray) -> list[tuple[str, list[np.ndarray]]]:
    """(name, the boxes of each variant) per setting: one variant per scale, four directions per shift."""
    out = [(f"scale {s:.1f}", [np.array([transform_box(b, scale=s) for b in base])]) for s in SCALES]
    for f in SHIFTS:
        out.append((f"shift {f:.1f}", [np.array([transform_box(b, shift=(f * dx, f * dy)) for b in base])
                                       for dx, dy in DIRECTIONS]))
    out.append(("square", [squares(base)]))  # the same crop as the box itself
    return out



def scored_people(split: list, limit: int = 0) -> tuple[list, list[np.ndarray], Scorer, np.ndarray]:
    """The people of ``split`` that PCK scores (a visible torso), the first ``limit`` of them (0: all): their
    records, their photos (BGR), a :class:`Scorer` for them, and the boxes their visible joints span."""
    records = [r for r in split if np.isfinite(r.norm) and r.norm > 0 and (r.visible > 0).sum() >= 2]
    if limit:
        records = records[:limit]
    images = [cv2.imread(str(r.image), cv2.IMREAD_COLOR) for r in records]
    scorer = Scorer(np.stack([r.joints for r in records]), np.stack([r.visible for r in records]),
                    np.array([r.norm for r in records]))
    return records, images, scorer, np.array([joints_box(r.joints, r.visible) for r in records])


def run(predictor: Predictor, images: list[np.ndarray], boxes: np.ndarray, *, refine: bool | str,
        batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, K, 2) and whether each person was re-cropped (N,), one box per image, through
    :meth:`Predictor.estimate` in batches."""
    pts, again = [], []
    for start in range(0, len(images), batch):
        prepared = [predictor.prepare(img, [box]) for img, box in
                    zip(images[start:start + batch], boxes[start:start + batch])]
        for people in predictor.estimate(prepared, refine=refine):
            pts.append(people.keypoints[0])
            again.append(bool(people.recropped[0]))
    return np.stack(pts), np.array(again)


class Scorer(PairedPCK):
    """PCK@0.2 of predictions for a fixed set of people (the mean over variants: the four shift directions), and
    paired bootstrap standard errors of losses (:class:`posedistill.evaluation.PairedPCK`)."""

    def __init__(self, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray, *, seed: int = 0,
                 resamples: int = 300) -> None:
        super().__init__(gt, visible, norm, threshold=0.2, resamples=resamples, seed=seed)

    def mean_pck(self, variants: list[np.ndarray]) -> float:
        """The mean PCK over the variants' predictions."""
        return float(np.mean([self.pck_of(self.errors(p)) for p in variants]))

    def loss_se(self, variants: list[np.ndarray], reference: np.ndarray) -> float:
        """Bootstrap standard error (over people) of ``mean_pck([reference]) - mean_pck(variants)``."""
        ref = self.errors(reference)
        ev = [self.errors(p) for p in variants]
        diffs = [self.pck_of(ref, s) - np.mean([self.pck_of(e, s) for e in ev]) for s in self.samples]
        return float(np.std(diffs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("POSEDISTILL_DATA", "../shared/data"))
                        / "lspet")
    parser.add_argument("--split", default="val", help="val (choices) or test (figures)")
    parser.add_argument("--weights", action="append", default=None,
                        help="checkpoint or ONNX file (repeatable; default: every shipped student)")
    parser.add_argument("--sweep", action="store_true",
                        help=f"also the rule's choices: IoU thresholds {THRESHOLDS} and margins {MARGINS}")
    parser.add_argument("--limit", type=int, default=0, help="first N people only (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    split = lspet_split(args.data, args.split)
    records, images, scorer, base = scored_people(split, args.limit)
    settings = settings_of(base)
    weights = args.weights or [str(default_weights(model=name)) for name in shipped_students()[0]]
    capability = torch.backends.cpu.get_cpu_capability()
    rows, sweeps, started = [], [], time.perf_counter()
    for w in weights:
        predictor = Predictor(w, locate="none", threads=args.threads)
        rule = predictor.refinement
        margins = sorted({*MARGINS, rule.margin}) if args.sweep else [rule.margin]
        runs: dict[str, dict[str, list]] = {}
        for name, variants in tqdm(settings, desc=Path(w).name, leave=False, file=sys.stderr):
            got: dict[str, list] = {"never": [], "auto": [], "auto_again": [], "iou": []}
            for boxes in variants:
                first, _ = run(predictor, images, boxes, refine=False)
                got["never"].append(first)
                pts, again = run(predictor, images, boxes, refine="auto")
                got["auto"].append(pts)
                got["auto_again"].append(again)
                got["iou"].append(rule.agreement(boxes, first))
                for m in margins:
                    predictor.refinement = replace(rule, margin=m)
                    got.setdefault(f"always m{m:g}", []).append(run(predictor, images, boxes, refine=True)[0])
                predictor.refinement = rule
            runs[name] = got
        reference = runs["scale 1.0"]["never"][0]
        ref_pck = scorer.mean_pck([reference])
        always = f"always m{rule.margin:g}"
        for name, got in runs.items():
            for mode, key, share in (("never", "never", 0.0), ("auto", "auto", float(np.mean(got["auto_again"]))),
                                     ("always", always, 1.0)):
                value = scorer.mean_pck(got[key])
                rows.append({"weights": Path(w).name, "setting": name, "refine": mode, "pck": value,
                             "loss": ref_pck - value, "loss_se": scorer.loss_se(got[key], reference),
                             "recropped": share})
        if args.sweep:
            for m in margins:
                for t in (*THRESHOLDS, 1.01):  # 1.01: every person re-cropped
                    cells = {}
                    for name, got in runs.items():
                        mixed = [np.where((iou < t)[:, None, None], again, first) for iou, again, first in
                                 zip(got["iou"], got[f"always m{m:g}"], got["never"])]
                        cells[name] = {"loss": ref_pck - scorer.mean_pck(mixed),
                                       "recropped": float(np.mean([iou < t for iou in got["iou"]]))}
                    sweeps.append({"weights": Path(w).name, "margin": m, "min_iou": t, "settings": cells})
    seconds = time.perf_counter() - started
    names = [name for name, _ in settings]
    print(f"\nPCK@0.2 (no flip) on LSPET {args.split}: {len(split)} people, {len(records)} scored (visible torso); "
          f"box = the joints' extent x scale, or its centre shifted by a fraction of its side (mean of 4 "
          f"directions); loss against the joints' own box without refinement (bootstrap SE over people in "
          f"brackets); re-cropped = extra network passes per person; {args.threads} thread(s), CPU {capability}, "
          f"{seconds:.0f} s\n")
    print("| weights | refine | " + " | ".join(names) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in names) + " |")
    for w in weights:
        for mode in ("never", "auto", "always"):
            cells = {r["setting"]: r for r in rows if r["weights"] == Path(w).name and r["refine"] == mode}
            print(f"| {Path(w).name} | {mode} | " + " | ".join(
                f"{cells[n]['pck']:.1f} ({-cells[n]['loss']:+.1f} ±{cells[n]['loss_se']:.1f})" for n in names) + " |")
        cells = {r["setting"]: r for r in rows if r["weights"] == Path(w).name and r["refine"] == "auto"}
        print(f"| {Path(w).name} | auto: re-cropped | " + " | ".join(
            f"{100 * cells[n]['recropped']:.0f} %" for n in names) + " |")
    if sweeps:
        print(f"\nthe rule's choices (loss against the joints' own box; re-cropped % at x1.0 / x1.5; worst: the "
              f"largest loss over x0.9-x1.5 and shift 0.1)\n")
        short = [n.replace("scale ", "x").replace("shift ", "sh") for n in names]
        print(f"{'weights':<34} {'margin':>6} {'min IoU':>7} " + " ".join(f"{n:>6}" for n in short)
              + "  re-crop %   worst")
        judged = [f"scale {v:.1f}" for v in SCALES if v <= 1.5] + ["shift 0.1"]
        for s in sweeps:
            c = s["settings"]
            worst = max(c[n]["loss"] for n in judged)
            print(f"{s['weights']:<34} {s['margin']:>6g} {s['min_iou']:>7g} "
                  + " ".join(f"{-c[n]['loss']:>6.1f}" for n in names)
                  + f"  {100 * c['scale 1.0']['recropped']:>4.0f} /{100 * c['scale 1.5']['recropped']:>4.0f}"
                  + f"  {-worst:>6.1f}")
    out = args.out or RESULTS / f"box_sensitivity_{args.split}.json"
    atomic_write_json(out, {"split": args.split, "people": len(split), "scored": len(records), "scales": SCALES,
                            "shifts": SHIFTS, "rule": {"min_iou": rule.min_iou, "margin": rule.margin},
                            "threads": args.threads, "cpu": capability, "torch": torch.__version__,
                            "seconds": seconds, "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                            "rows": rows, "sweep": sweeps})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
