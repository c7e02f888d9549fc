#!/usr/bin/env python
"""Experiment (issue 14, not in the product): correct the localiser's final box by regression from the crop.

Where the localiser finds the right person its box is the right size but off centre. This fits a small MLP
that predicts, from a candidate crop's person-scorer features (``posedistill.inference.person_score.candidate_features``),
where the ground-truth box lies relative to the crop: (dx, dy) of the centre in crop sides and the log of the
side ratio. Training rows: the shipped localiser's final candidates on ``--train-scenes`` training-slice scenes
(own seed) whose box overlaps the truth by IoU > ``--min-iou``. Evaluation: on the validation scenes, the
localiser's chosen person, then its box corrected once, twice and three times (one network pass each), against
the localiser alone and the ground-truth box (PCK@0.2 over the scenes' visible joints).

    python experiments/box_regression_experiment.py --train-scenes 1200 --val-scenes 500 --out runs/lspet128/box_regression.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from posedistill.data.scenes import default_lspet_root, joints_box, lspet_people, scene_for

from posedistill.data.readers import lspet_split
from posedistill.data.records import box_iou, box_to_square
from posedistill.inference.localize import Candidate, Localizer
from posedistill.inference.network import PoseNetwork
from posedistill.io import atomic_write_json


class FeatureLocalizer(Localizer):
    """The shipped localiser, keeping every final candidate, the chosen ones and the features of each crop."""

    def poses(self, jobs, features=None):
        feats: list[np.ndarray] = []
        people = super().poses(jobs, feats)
        for person, row in zip(people, np.concatenate(feats) if feats else []):
            person.features = row  # type: ignore[attr-defined]
        return people

    def _select(self, people: list[Candidate]) -> list[Candidate]:
        self.final = list(people)
        self.chosen = super()._select(people)
        return self.chosen


def square(box, padding: float) -> np.ndarray:
    centre, side = box_to_square(box, padding)
    return np.array([centre[0], centre[1], side])


def targets(boxes, truths, padding: float) -> np.ndarray:
    c = np.array([square(b, padding) for b in boxes])
    g = np.array([square(b, padding) for b in truths])
    return np.stack([(g[:, 0] - c[:, 0]) / c[:, 2], (g[:, 1] - c[:, 1]) / c[:, 2], np.log(g[:, 2] / c[:, 2])], 1)


def fit(x: np.ndarray, y: np.ndarray, *, hidden: int = 64, steps: int = 400, seed: int = 0):
    """MLP regression by full-batch Adam; returns a numpy function features -> (dx, dy, log side ratio)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3))
    opt = torch.optim.Adam(net.parameters(), 1e-2, weight_decay=1e-3)
    xt, yt = torch.from_numpy(((x - mean) / std).astype(np.float32)), torch.from_numpy(y.astype(np.float32))
    for _ in range(steps):
        opt.zero_grad()
        loss = ((net(xt) - yt) ** 2).mean()
        loss.backward()
        opt.step()

    def predict(features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(((features - mean) / std).astype(np.float32))).numpy()
    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-scenes", type=int, default=1200)
    parser.add_argument("--val-scenes", type=int, default=500, help="first N validation people (torso visible)")
    parser.add_argument("--min-iou", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=3, help="corrections applied in turn")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    root = default_lspet_root()
    backgrounds = lspet_split(root, "train")
    network = PoseNetwork.load(threads=args.threads)  # the shipped student
    padding = network.meta.box_padding
    loc = FeatureLocalizer(network)
    start = time.perf_counter()
    xs, ys = [], []
    for rec in lspet_people(root, "train", args.train_scenes, need_torso=True):
        canvas, joints, _, _ = scene_for(rec, backgrounds, 21)
        loc.locate(canvas)
        truth = joints_box(joints, rec.visible)
        keep = [p for p in loc.final if box_iou(p.box, truth) > args.min_iou]
        if keep:
            xs.append(np.array([p.features for p in keep]))
            ys.append(targets([p.box for p in keep], [truth] * len(keep), padding))
    x, y = np.concatenate(xs), np.concatenate(ys)
    regress = fit(x, y)
    print(f"fitted on {len(x)} candidates of {args.train_scenes} training scenes, {time.perf_counter() - start:.0f} s",
          flush=True)

    def estimate(canvas, box):
        """(features, keypoints) of the crop of ``box``: one pass through the localiser's own scoring."""
        person = loc.poses([(canvas, list(box))])[0]
        return person.features, person.keypoints  # type: ignore[attr-defined]

    def corrected(features, box):
        dx, dy, ds = regress(features[None])[0]
        cx, cy, side = square(box, padding)
        new = side * np.exp(ds) / padding
        return [cx + dx * side - new / 2, cy + dy * side - new / 2, new, new]

    names = ["gt-box", "localiser", *(f"corrected x{k}" for k in range(1, args.steps + 1))]
    hits: dict[str, list[np.ndarray]] = {n: [] for n in names}
    people = lspet_people(root, "val", args.val_scenes, need_torso=True)
    for rec in people:
        canvas, joints, norm, _ = scene_for(rec, backgrounds, 14)
        visible = rec.visible > 0

        def score(name, keypoints):
            hits[name].append((np.linalg.norm(keypoints - joints, axis=1) / norm <= 0.2)[visible])
        score("gt-box", estimate(canvas, joints_box(joints, rec.visible))[1])
        loc.locate(canvas)
        person = loc.chosen[0]
        score("localiser", person.keypoints)
        box, features = person.box, person.features  # type: ignore[attr-defined]
        for k in range(1, args.steps + 1):
            box = corrected(features, box)
            features, keypoints = estimate(canvas, box)
            score(f"corrected x{k}", keypoints)
    rows = [{"run": n, "pck": 100 * float(np.concatenate(h).mean())} for n, h in hits.items()]
    print(f"LSPET val: {len(people)} scenes (torso visible); PCK@0.2 over their visible joints")
    for r in rows:
        print(f"{r['run']:<14} {r['pck']:6.1f}")
    atomic_write_json(args.out, {"train_scenes": args.train_scenes, "train_rows": int(len(x)),
                                 "min_iou": args.min_iou, "val_scenes": len(people), "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
