#!/usr/bin/env python
"""Does averaging the final box variants' poses beat picking one? Val photos and scenes, the shipped student.

The finder search (final_scales (1.0,)) gives a box; the student then runs on it at 0.9 / 1.0 / 1.1 and the pose
is the person scorer's pick (``sel``, what the product does), the joint-score-weighted mean (``wavg``), the plain
mean (``avg``), or the weighted mean over five scales (``wavg5``); ``base`` is the search without the variants.

    python experiments/person_finder/average_variants.py
"""
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import load_set
from posedistill import Predictor
from posedistill.evaluation import PCK
from posedistill.inference.localize import Localizer, _scaled


def main() -> None:
    torch.set_num_threads(1); cv2.setNumThreads(1)
    p = Predictor(threads=1, refine=False); net = p.network
    loc = Localizer(net, final_scales=(1.0,))
    pck = PCK(0.2)
    for name in ("photos", "scenes"):
        images, gt, vis, norm = load_set(Path('/work/shared/data/lspet'), 'val', name, 0)
        out = {k: [] for k in ("sel", "wavg", "avg", "base", "wavg5")}
        for img in images:
            r = loc.locate(img); b = r.boxes[0].tolist()
            out["base"].append(r.keypoints[0])
            boxes = [_scaled(b, f) for f in (0.9, 1.0, 1.1)]
            res = loc.score_boxes(img, boxes)
            k, s, q = res.keypoints, res.scores, res.person_scores
            out["sel"].append(k[int(np.argmax(q))])
            w = s[..., None]
            out["wavg"].append((k * w).sum(0) / np.maximum(w.sum(0), 1e-9))
            out["avg"].append(k.mean(0))
            boxes5 = [_scaled(b, f) for f in (0.85, 0.95, 1.0, 1.05, 1.15)]
            res5 = loc.score_boxes(img, boxes5); w5 = res5.scores[..., None]
            out["wavg5"].append((res5.keypoints * w5).sum(0) / np.maximum(w5.sum(0), 1e-9))
        print(name, {k: round(pck(np.stack(v), gt, vis, norm)["mean"], 2) for k, v in out.items()}, flush=True)


if __name__ == "__main__":
    main()
