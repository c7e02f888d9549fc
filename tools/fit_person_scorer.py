#!/usr/bin/env python
"""Fit the localiser's person scorer for one pose model (see ``posedistill.inference.person_score``).

Every person of an LSPET split (default: the training slice, which the localisation benchmark never uses) is
placed on a synthetic scene as in ``benchmarks/localisation.py`` (own seed), and the localiser runs on it: the
first pass over the whole image and the window grid, then three refinements of the ``--top 8`` most confident
candidates. Every candidate crop on the way is one training row: its features, and as target the fraction of its
visible joints within PCK@0.2 of the truth. The scorer is written beside the weights
(``<weights>.person.json``), where ``Localizer(scorer="auto")``, ``predict`` and ``serve`` find it.

    python tools/fit_person_scorer.py --weights runs/lspet128/student_hg2_64/best.pt        # 600 scenes
    python tools/fit_person_scorer.py --weights W --scenes 50 --out /tmp/s.person.json      # a quick one
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from scenes import lspet_people, scene_for, shared_lspet  # noqa: E402

from posedistill.data.readers import lspet_split  # noqa: E402
from posedistill.evaluation import joint_errors  # noqa: E402
from posedistill.inference.predictor import Predictor  # noqa: E402
from posedistill.inference.localize import Localizer  # noqa: E402
from posedistill.inference.person_score import fit_person_scorer, sidecar_path  # noqa: E402
from posedistill.models.pretrained import sha256_file  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, type=Path, help="the pose model's checkpoint")
    parser.add_argument("--data", type=Path, default=None, help="LSPET root (default ../shared/data/lspet)")
    parser.add_argument("--split", default="train", choices=["train", "val"])
    parser.add_argument("--scenes", type=int, default=600)
    parser.add_argument("--top", type=int, default=8, help="first-pass candidates refined per scene")
    parser.add_argument("--refinements", type=int, default=3)
    parser.add_argument("--seed", type=int, default=21, help="scene seed (the benchmark's is 14)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="default: <weights>.person.json")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs)")
    args = parser.parse_args()

    root = args.data or shared_lspet()
    people = lspet_people(root, args.split, args.scenes, need_torso=True)
    backgrounds = lspet_split(root, "train")
    predictor = Predictor(args.weights, threads=args.threads)
    loc = Localizer(predictor, method="pose", scorer=None)
    features, targets = [], []
    start = time.perf_counter()
    for rec in tqdm(people, desc="scenes", unit="scene", disable=args.no_progress):
        canvas, joints, norm, _ = scene_for(rec, backgrounds, args.seed)
        feats: list[np.ndarray] = []
        found = loc._poses([(canvas, b) for b in loc.candidates(canvas)], feats)
        rounds = [found]
        kept = sorted(found, key=lambda p: -p.confidence)[:args.top]
        for _ in range(args.refinements):
            kept = loc._poses([(canvas, loc._next_box(canvas, p)) for p in kept], feats)
            rounds.append(kept)
        pts = np.array([p.keypoints for r in rounds for p in r])
        n = len(pts)
        err = joint_errors(pts, np.repeat(joints[None], n, 0), np.repeat(rec.visible[None], n, 0),
                           np.full(n, norm))
        visible = rec.visible > 0
        targets.append(np.mean(err[:, visible] <= 0.2, axis=1))
        features.append(np.concatenate(feats))
    x, y = np.concatenate(features), np.concatenate(targets)
    sha = sha256_file(args.weights)
    scorer = fit_person_scorer(x, y, num_joints=predictor.meta.num_joints, weights_sha256=sha,
                               info={"split": args.split, "scenes": len(people), "candidates": int(len(x)),
                                     "seed": args.seed, "weights": args.weights.name,
                                     "mean_target": float(y.mean())})
    out = args.out or sidecar_path(args.weights)
    scorer.save(out)
    print(f"{len(people)} scenes, {len(x)} candidates (mean fraction correct {y.mean():.3f}), "
          f"{time.perf_counter() - start:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
