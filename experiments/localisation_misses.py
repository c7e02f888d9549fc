#!/usr/bin/env python
"""Where the localiser's misses land, and which rule for several people finds the annotated one (issue 14).

Runs the shipped localiser (or ``--weights``) on the localisation benchmark's scenes (:mod:`posedistill.data.scenes`,
same seed) asking for up to ``--people`` people, and reports, with PCK@0.2 as in ``benchmarks/localisation.py``:

* rules for choosing one person among those returned: the best-scored (the default, what ``predict`` returns),
  the largest box among those scored at least r x the best, and the one on the annotated person (what a user
  who picks gets: not a rule, an upper bound for the choice);
* the misses of the best-scored rule (box IoU < 0.1 with the truth): how many lie on the pasted photo (another
  person, or the photo's own background) rather than on the pixelated canvas;
* a mosaic of the scenes whose chosen box overlaps the truth by IoU < 0.3 (green: truth, red: chosen), to look at.

    python experiments/localisation_misses.py --split val --out runs/lspet128/localisation_misses_val
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from posedistill.data.scenes import default_lspet_root, inside, joints_box, lspet_people, scene_for

from posedistill.data.readers import lspet_split
from posedistill.evaluation import PCK
from posedistill.inference.network import PoseNetwork
from posedistill.io import atomic_write_json
from posedistill.inference.localize import Localizer, box_iou

RELATIVE = (0.6, 0.8, 0.9)


def tile(canvas: np.ndarray, truth: list[float], chosen: list[float], label: str, side: int = 200) -> np.ndarray:
    """The part of ``canvas`` around both boxes, boxes drawn, resized to ``side`` x ``side``."""
    img = canvas.copy()
    for (x, y, w, h), colour in ((truth, (0, 255, 0)), (chosen, (0, 0, 255))):
        cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), colour, 3)
    x0, y0 = int(max(0, min(truth[0], chosen[0]) - 40)), int(max(0, min(truth[1], chosen[1]) - 40))
    x1 = int(min(img.shape[1], max(truth[0] + truth[2], chosen[0] + chosen[2]) + 40))
    y1 = int(min(img.shape[0], max(truth[1] + truth[3], chosen[1] + chosen[3]) + 40))
    out = cv2.resize(img[y0:y1, x0:x1], (side, side), interpolation=cv2.INTER_AREA)
    cv2.putText(out, label, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--people", type=int, default=5, help="people asked of the localiser")
    parser.add_argument("--seed", type=int, default=14, help="scene seed (the benchmark's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="folder for summary.json and misses.jpg")
    args = parser.parse_args()

    root = default_lspet_root()
    people = lspet_people(root, args.split, args.limit, need_torso=True)
    backgrounds = lspet_split(root, "train")
    network = PoseNetwork.load(args.weights, threads=args.threads)
    localizer = Localizer(network, max_people=args.people, min_relative_score=min(RELATIVE))
    rules = ["best-scored", *(f"largest within {r}" for r in RELATIVE), "on the annotated person"]
    pred: dict[str, list[np.ndarray]] = {r: [] for r in rules}
    gts, vis, norms, tiles = [], [], [], []
    misses = on_photo = 0
    for i, rec in enumerate(tqdm(people, desc="scenes", unit="scene", disable=None)):  # off when not a terminal
        canvas, joints, norm, photo = scene_for(rec, backgrounds, args.seed)
        truth = joints_box(joints, rec.visible)
        found = localizer.locate(canvas)  # best first; person_scores: the localiser's ranking
        people_found = list(zip(found.boxes.tolist(), found.keypoints, found.person_scores))
        best_box, best_pts, best_score = people_found[0]
        pred["best-scored"].append(best_pts)
        for r in RELATIVE:
            pool = [p for p in people_found if p[2] >= r * best_score]
            pred[f"largest within {r}"].append(max(pool, key=lambda p: p[0][2] * p[0][3])[1])
        pred["on the annotated person"].append(max(people_found, key=lambda p: box_iou(p[0], truth))[1])
        gts.append(joints), vis.append(rec.visible), norms.append(norm)
        iou = box_iou(best_box, truth)
        if iou < 0.1:
            misses += 1
            on_photo += inside(best_box, photo)
        if iou < 0.3:
            tiles.append(tile(canvas, truth, best_box, f"{i} {rec.image.stem}"))
    gt, visible, norm = np.array(gts), np.array(vis), np.array(norms)
    pck = PCK(0.2)
    rows = [{"rule": r, "pck": pck(np.array(p), gt, visible, norm)["mean"]} for r, p in pred.items()]
    print(f"LSPET {args.split}: {len(people)} scenes (torso visible), up to {args.people} people asked; "
          f"weights {network.weights.name}")
    for r in rows:
        print(f"{r['rule']:<26} {r['pck']:6.1f}")
    print(f"misses (IoU < 0.1): {misses} ({100 * misses / len(people):.1f} %), {on_photo} of them on the photo; "
          f"scenes with IoU < 0.3: {len(tiles)} (drawn)")
    args.out.mkdir(parents=True, exist_ok=True)
    if tiles:
        width = 8
        tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % width)
        mosaic = np.vstack([np.hstack(tiles[j:j + width]) for j in range(0, len(tiles), width)])
        cv2.imwrite(str(args.out / "misses.jpg"), mosaic, [cv2.IMWRITE_JPEG_QUALITY, 80])
    atomic_write_json(args.out / "summary.json", {
        "split": args.split, "scenes": len(people), "people": args.people, "seed": args.seed,
        "weights": network.weights.name, "rows": rows, "misses": misses, "misses_on_photo": on_photo,
        "low_iou_scenes": len(tiles)})
    print(f"wrote {args.out}/summary.json and misses.jpg")


if __name__ == "__main__":
    main()
