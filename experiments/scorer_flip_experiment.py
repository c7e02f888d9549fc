#!/usr/bin/env python
"""Does flip consistency rank the localiser's candidates better? (issue 14, localisation; an experiment)

A network that sees a person predicts the mirrored pose on the mirrored crop; on a patch of background or a crop
around part of a person it tends to guess, and the two guesses disagree. This script measures whether that
agreement adds to the person scorer's features, offline, on the localiser's own final candidates:

1. LSPET scenes as in ``benchmarks/localisation.py`` (training slice, the scorer's seed 21); the shipped localiser
   (person scorer, defaults) runs its first pass and refinements as in production;
2. for every final candidate (the refined ones and their scaled boxes, among which the localiser picks) it keeps
   the scorer's features, the features of the flip test's averaged heatmaps, and per joint the distance between
   the pose on the crop and the mirrored pose on the mirrored crop (in crop sides), and as target the fraction of
   visible joints within PCK@0.2 of the truth;
3. 5-fold cross-validation by scene of the scorer's MLP on the final candidates with each feature set; per scene
   the candidate with the highest predicted score is picked; the table gives the mean fraction correct of the
   picks (close to PCK@0.2), the shipped scorer's picks and the oracle's.

    python experiments/scorer_flip_experiment.py --scenes 600 --threads 1 --out runs/lspet128/scorer_flip.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from posedistill.data.scenes import default_lspet_root, lspet_people, scene_for

from posedistill.data.readers import lspet_split
from posedistill.evaluation import joint_errors
from posedistill.inference.network import PoseNetwork
from posedistill.io import atomic_write_text
from posedistill.inference.localize import Localizer, _scaled
from posedistill.inference.person_score import candidate_features
from posedistill.inference.scorer_fit import fit_person_scorer


def final_candidates(loc: Localizer, canvas: np.ndarray):
    """The localiser's final candidate boxes for one image (first pass, refinements, final scales)."""
    first = loc.poses([(canvas, b) for b in loc.candidates(canvas)])
    kept = sorted(first, key=lambda p: -p.score)[:loc.top_k]
    for _ in range(loc.refine_steps):
        kept = loc.poses([(canvas, loc.next_box(canvas, p)) for p in kept])
    return [p.box for p in kept] + [_scaled(p.box, f) for p in kept for f in loc.final_scales if f != 1.0]


def crop_views(pred: PoseNetwork, canvas: np.ndarray, boxes):
    """Heatmaps of the crops and of their mirrors (mirrored back, left/right swapped), and the crop matrices."""
    crops, mats = zip(*(pred.preprocess(canvas, b) for b in boxes))
    crops, mats = np.stack(crops), np.stack(mats)
    hm = pred.heatmaps(crops)
    hm_flip = pred.heatmaps(np.ascontiguousarray(crops[..., ::-1]))[..., ::-1][:, list(pred.meta.flip_index)]
    return hm, np.ascontiguousarray(hm_flip), mats


def flip_features(pred: PoseNetwork, hm: np.ndarray, hm_flip: np.ndarray) -> np.ndarray:
    """(N, K + 3): per joint the distance between the two views' joints (crop sides), then their mean, median
    and the fraction of joints within 0.05 of the side."""
    a, _ = pred.codec.decode(hm)
    b, _ = pred.codec.decode(hm_flip)
    d = np.linalg.norm(a - b, axis=-1) / pred.input_size
    return np.concatenate([d, d.mean(1, keepdims=True), np.median(d, 1, keepdims=True),
                           (d < 0.05).mean(1, keepdims=True)], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="default: the shipped student")
    parser.add_argument("--scenes", type=int, default=600)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    root = default_lspet_root()
    people = lspet_people(root, "train", args.scenes, need_torso=True)
    backgrounds = lspet_split(root, "train")
    pred = PoseNetwork.load(args.weights, threads=args.threads)
    loc = Localizer(pred, method="pose")  # the shipped scorer and defaults, as in production
    rows: dict[str, list[np.ndarray]] = {"base": [], "avg": [], "flip": [], "target": [], "shipped": [], "scene": []}
    start = time.perf_counter()
    for s, rec in enumerate(tqdm(people, desc="scenes", unit="scene")):
        canvas, joints, norm, _ = scene_for(rec, backgrounds, args.seed)
        boxes = final_candidates(loc, canvas)
        hm, hm_flip, mats = crop_views(pred, canvas, boxes)
        pts, scores = pred.decode_heatmaps(hm, mats)
        pad = pred.meta.box_padding
        rows["base"].append(candidate_features(hm, pts, scores, boxes, padding=pad))
        avg = (hm + hm_flip) / 2
        pts_avg, scores_avg = pred.decode_heatmaps(avg, mats)
        rows["avg"].append(candidate_features(avg, pts_avg, scores_avg, boxes, padding=pad))
        rows["flip"].append(flip_features(pred, hm, hm_flip))
        n = len(boxes)
        err = joint_errors(pts, np.repeat(joints[None], n, 0), np.repeat(rec.visible[None], n, 0), np.full(n, norm))
        rows["target"].append(np.mean(err[:, rec.visible > 0] <= 0.2, axis=1))
        rows["shipped"].append(loc.scorer.score(rows["base"][-1]))
        rows["scene"].append(np.full(n, s))
    data = {k: np.concatenate(v) for k, v in rows.items()}
    scene, y = data["scene"], data["target"]
    sets = {"scorer features": data["base"], "+ flip agreement": np.concatenate([data["base"], data["flip"]], 1),
            "flip-averaged heatmaps": data["avg"],
            "flip-averaged + agreement": np.concatenate([data["avg"], data["flip"]], 1)}

    def picked(score: np.ndarray) -> float:
        return float(np.mean([y[scene == s][np.argmax(score[scene == s])] for s in np.unique(scene)]))

    fold = np.unique(scene) % args.folds
    results = {"oracle": picked(y), "shipped scorer (no refit)": picked(data["shipped"])}
    for name, x in sets.items():
        out = np.zeros(len(y))
        for f in range(args.folds):
            test = np.isin(scene, np.unique(scene)[fold == f])
            sc = fit_person_scorer(x[~test], y[~test], num_joints=pred.meta.num_joints)
            out[test] = sc.score(x[test])
        results[f"refit (5-fold CV): {name}"] = picked(out)
    print(f"{len(people)} scenes, {len(y)} final candidates, {time.perf_counter() - start:.0f} s")
    print(f"{'ranking':48s} mean fraction correct of the pick")
    for name, v in results.items():
        print(f"{name:48s} {100 * v:6.1f}")
    if args.out:
        atomic_write_text(args.out, json.dumps({"command": " ".join(sys.argv), "scenes": len(people),
                                                "candidates": int(len(y)), "results": results}, indent=1))


if __name__ == "__main__":
    main()
