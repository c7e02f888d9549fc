"""Fit the localiser's person scorer for one pose model (see :mod:`posedistill.inference.person_score`).

Every person of an LSPET split (default: the training slice, which the localisation benchmark never uses) is placed
on a synthetic scene (:mod:`posedistill.data.scenes`, as in ``benchmarks/localisation.py``, own seed), and the
localiser runs on it: the first pass over the whole image and the window grid, then three refinements of the ``--top
8`` most confident candidates. Every candidate crop on the way is one training row: its features, and as target the
fraction of its visible joints within PCK@0.2 of the truth. The scorer is written beside the weights
(``<weights>.person.json``), where ``Localizer(scorer="auto")``, ``predict`` and ``serve`` find it.

    python -m posedistill.inference.scorer_fit --weights runs/lspet128/student_hg2_64/best.pt        # 600 scenes
    python -m posedistill.inference.scorer_fit --weights W --scenes 50 --out /tmp/s.person.json      # a quick one
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..data.readers import lspet_split
from ..data.records import PersonRecord
from ..data.scenes import default_lspet_root, lspet_people, scene_for
from ..evaluation import joint_errors
from ..models.pretrained import sha256_file
from .localize import Localizer
from .network import PoseNetwork
from .person_score import PersonScorer, sidecar_path

__all__ = ["collect_candidates", "fit_person_scorer", "main"]


def collect_candidates(loc: Localizer, people: list[PersonRecord], backgrounds: list[PersonRecord], *, seed: int,
                       top: int = 8, refinements: int = 3, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, F) and targets (N,) of every candidate crop the localiser makes on one synthetic scene per
    person: the first pass, then ``refinements`` refinements of the ``top`` most confident candidates; a target is
    the fraction of the person's visible joints within PCK@0.2 of the truth."""
    features, targets = [], []
    for rec in tqdm(people, desc="scenes", unit="scene", disable=not progress):
        canvas, joints, norm, _ = scene_for(rec, backgrounds, seed)
        feats: list[np.ndarray] = []
        found = loc.poses([(canvas, b) for b in loc.candidates(canvas)], feats)
        rounds = [found]
        kept = sorted(found, key=lambda p: -p.confidence)[:top]
        for _ in range(refinements):
            kept = loc.poses([(canvas, loc.next_box(canvas, p)) for p in kept], feats)
            rounds.append(kept)
        pts = np.array([p.keypoints for r in rounds for p in r])
        n = len(pts)
        err = joint_errors(pts, np.repeat(joints[None], n, 0), np.repeat(rec.visible[None], n, 0),
                           np.full(n, norm))
        visible = rec.visible > 0
        targets.append(np.mean(err[:, visible] <= 0.2, axis=1))
        features.append(np.concatenate(feats))
    return np.concatenate(features), np.concatenate(targets)


def fit_person_scorer(features: np.ndarray, targets: np.ndarray, *, num_joints: int, hidden: int = 32,
                      weight_decay: float = 1e-3, steps: int = 300, lr: float = 1e-2, seed: int = 0,
                      weights_sha256: str | None = None, info: dict[str, Any] | None = None) -> PersonScorer:
    """Fit the MLP to per-candidate ``targets`` (fraction of correct joints, 0-1) by full-batch Adam on the
    binary cross-entropy (the settings chosen by 5-fold cross-validation over localisation scenes)."""
    x = np.asarray(features, np.float32)
    y = np.asarray(targets, np.float32)
    if x.ndim != 2 or len(x) != len(y) or len(x) < 2 or not np.all(np.isfinite(y)):
        raise ValueError("features (N, F) and N finite targets are required")
    mean, std = x.mean(0), x.std(0) + 1e-6
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr, weight_decay=weight_decay)
    xt, yt = torch.from_numpy((x - mean) / std), torch.from_numpy(y)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt).squeeze(1), yt)
        loss.backward()
        opt.step()
    layers = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in net
              if isinstance(m, torch.nn.Linear)]
    return PersonScorer(num_joints, mean, std, layers, weights_sha256, {**(info or {}), "final_loss": loss.item()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m posedistill.inference.scorer_fit",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, type=Path, help="the pose model's checkpoint")
    parser.add_argument("--data", type=Path, default=None,
                        help="LSPET root (default: $POSEDISTILL_DATA/lspet, else ../shared/data/lspet)")
    parser.add_argument("--split", default="train", choices=["train", "val"])
    parser.add_argument("--scenes", type=int, default=600)
    parser.add_argument("--top", type=int, default=8, help="first-pass candidates refined per scene")
    parser.add_argument("--refinements", type=int, default=3)
    parser.add_argument("--seed", type=int, default=21, help="scene seed (the benchmark's is 14)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="default: <weights>.person.json")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs)")
    args = parser.parse_args(argv)

    root = args.data or default_lspet_root()
    people = lspet_people(root, args.split, args.scenes, need_torso=True)
    backgrounds = lspet_split(root, "train")
    network = PoseNetwork.load(args.weights, threads=args.threads)
    loc = Localizer(network, method="pose", scorer=None)
    start = time.perf_counter()
    x, y = collect_candidates(loc, people, backgrounds, seed=args.seed, top=args.top, refinements=args.refinements,
                              progress=not args.no_progress)
    sha = sha256_file(args.weights)
    scorer = fit_person_scorer(x, y, num_joints=network.meta.num_joints, weights_sha256=sha,
                               info={"split": args.split, "scenes": len(people), "candidates": int(len(x)),
                                     "seed": args.seed, "weights": args.weights.name,
                                     "mean_target": float(y.mean())})
    out = args.out or sidecar_path(args.weights)
    scorer.save(out)
    print(f"{len(people)} scenes, {len(x)} candidates (mean fraction correct {y.mean():.3f}), "
          f"{time.perf_counter() - start:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
