#!/usr/bin/env python
"""Does a second re-crop of a given box pay? LSPET people with the joints' extent scaled / shifted as in
``benchmarks/box_sensitivity.py``: PCK@0.2 (no flip) after the first pass, after the shipped ``refine="auto"``
rule (one re-crop when the joints' square disagrees with the box's, IoU below ``min_iou``), and after that rule
applied once more to the re-cropped people (their second box against their new joints). Write-up:
``docs/inference.md``, "Loose and shifted boxes".

    python experiments/box_refine/twice.py --split val --weights runs/lspet8800/fpd_tiny_r2/best.pt
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from box_sensitivity import run, scored_people, settings_of  # noqa: E402

from posedistill.data import lspet_split  # noqa: E402
from posedistill.inference.predictor import Predictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("POSEDISTILL_DATA", "../shared/data"))
                        / "lspet")
    parser.add_argument("--split", default="val")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    records, images, scorer, base = scored_people(lspet_split(args.data, args.split), 0)
    predictor = Predictor(args.weights, locate="none", threads=args.threads)
    rule = predictor.refinement
    table: dict[str, dict[str, float]] = {}
    reference = None
    for name, variants in settings_of(base):
        got: dict[str, list] = {"first": [], "once": [], "twice": [], "twice_all": []}
        shares = {"once": [], "twice": []}
        for boxes in variants:
            first, _ = run(predictor, images, boxes, refine=False)
            need1 = rule.agreement(boxes, first) < rule.min_iou
            box1 = rule.crop_box(first)
            second, _ = run(predictor, images, box1, refine=False)
            once = np.where(need1[:, None, None], second, first)
            box2 = rule.crop_box(second)
            third, _ = run(predictor, images, box2, refine=False)
            need2 = need1 & (rule.agreement(box1, second) < rule.min_iou)
            got["first"].append(first)
            got["once"].append(once)
            got["twice"].append(np.where(need2[:, None, None], third, once))
            got["twice_all"].append(np.where(need1[:, None, None], third, once))
            shares["once"].append(need1.mean())
            shares["twice"].append(need2.mean())
        if name == "scale 1.0":
            reference = got["first"][0]
        table[name] = {k: scorer.mean_pck(v) for k, v in got.items()}
        table[name].update({f"share_{k}": float(np.mean(v)) for k, v in shares.items()})
        print(name, {k: round(v, 3) for k, v in table[name].items()}, flush=True)
    ref = scorer.mean_pck([reference])
    print(f"\n{args.split}, {len(records)} people, {Path(args.weights)}, rule {rule}; loss against the joints' own "
          "box, first pass")
    print(f"{'setting':<10} {'first':>7} {'once':>7} {'twice':>7} {'twice_all':>9} {'re-crop 1/2 %':>14}")
    for name, row in table.items():
        print(f"{name:<10} {row['first'] - ref:>+7.1f} {row['once'] - ref:>+7.1f} {row['twice'] - ref:>+7.1f} "
              f"{row['twice_all'] - ref:>+9.1f} {100 * row['share_once']:>6.0f} / {100 * row['share_twice']:.0f}")
    if args.out:
        args.out.write_text(json.dumps({"split": args.split, "weights": args.weights, "reference": ref,
                                        "rows": table}, indent=1))


if __name__ == "__main__":
    main()
