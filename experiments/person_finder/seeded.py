#!/usr/bin/env python
"""The product's localiser search seeded by the learned finder instead of the window grid.

``posedistill.inference.localize.Localizer`` tries the whole image and a grid of windows (dozens of crops), ranks
them with the person scorer, refines the best 12 twice and tries each at 0.7 / 0.85 / 1.0 of its box. Here its
first candidates are the finder's ``--peaks`` best boxes, each scaled by every ``--scales`` factor (plus the whole
image with ``--whole``), and ``top_k`` / ``refine_steps`` / ``final_scales`` are swept, so every setting costs a
handful of crops. PCK@0.2 of the best person on the val (or test) photos and scenes, crops per image, and the
time of each setting per photo (one thread, interleaved photo by photo, after warm-up), beside the plain
``Localizer`` (``--baseline``) and the student on the true box.

    python experiments/person_finder/seeded.py --split val --weights experiments/person_finder/finder_w24.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from posedistill import Predictor  # noqa: E402
from posedistill.evaluation import PCK  # noqa: E402
from posedistill.inference.localize import Localizer  # noqa: E402

from posedistill.data.person_canvases import joints_extent  # noqa: E402
from evaluate import load_set  # noqa: E402
from finder import DEFAULT_WEIGHTS, Finder, scale_box  # noqa: E402

# name: the finder's candidates (peaks, scales about each box, the whole image too) and the Localizer's settings
def _s(peaks, scales, whole, top_k, steps, final, keep=10, margin=1.2):
    return dict(peaks=peaks, scales=scales, whole=whole, top_k=top_k, refine_steps=steps, final_scales=final,
                keep_joints=keep, margin=margin)


SETTINGS = {
    "p1 x1.4 k1 r2": _s(1, (1.4,), False, 1, 2, (1.0,)),
    "p1 x1.4 k1 r2 f.85": _s(1, (1.4,), False, 1, 2, (0.85, 1.0)),
    "p2 x1.2,1.6 k2 r2": _s(2, (1.2, 1.6), False, 2, 2, (1.0,)),
    "p3 x1.2,1.6 k2 r2 f.85": _s(3, (1.2, 1.6), False, 2, 2, (0.85, 1.0)),
    "p3 x1.2,1.6 +w k3 r2 f.7,.85": _s(3, (1.2, 1.6), True, 3, 2, (0.7, 0.85, 1.0)),
    "p3 x1.2,1.6 +w k2 r1 f.85": _s(3, (1.2, 1.6), True, 2, 1, (0.85, 1.0)),
    "p1 x1.4 k1 r2 j14 m1": _s(1, (1.4,), False, 1, 2, (1.0,), 14, 1.0),
    "p1 x1.4 k1 r2 j12 m1.05": _s(1, (1.4,), False, 1, 2, (1.0,), 12, 1.05),
    "p1 x1.4 k1 r3 j14 m1": _s(1, (1.4,), False, 1, 3, (1.0,), 14, 1.0),
    "p1 x1.4 k1 r2 j14 m1 f.9,1.1": _s(1, (1.4,), False, 1, 2, (0.9, 1.0, 1.1), 14, 1.0),
    "p2 x1.4 k2 r2 j14 m1": _s(2, (1.4,), False, 2, 2, (1.0,), 14, 1.0),
    "p3 x1.3 +w k3 r2 j14 m1": _s(3, (1.3,), True, 3, 2, (1.0,), 14, 1.0),
    "p2 x1.2,1.6 k2 r2 j14 m1": _s(2, (1.2, 1.6), False, 2, 2, (1.0,), 14, 1.0),
}


class SeededLocalizer(Localizer):
    """A :class:`Localizer` whose first candidates are the finder's boxes."""

    def __init__(self, network, finder: Finder, *, peaks: int, scales, whole: bool, **kw) -> None:
        super().__init__(network, method="pose", finder=None, **kw)  # every setting given explicitly
        self.seed_finder, self.peaks, self.scales, self.whole = finder, peaks, scales, whole

    def candidates_many(self, images) -> list[list[list[float]]]:
        return [self._seeds(image) for image in images]

    def _seeds(self, image: np.ndarray) -> list[list[float]]:
        boxes = [[float(v) for v in scale_box(b, f)] for _, b in self.seed_finder(image, top_k=self.peaks)
                 for f in self.scales]
        if self.whole:
            h, w = image.shape[:2]
            boxes.append([0.0, 0.0, float(w), float(h)])
        return boxes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/lspet"))
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--settings", default="", help="names of SETTINGS separated by ; (default: all)")
    ap.add_argument("--sets", default="photos,scenes")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--baseline", action="store_true", help="also the plain Localizer (slow: ~200 ms a photo)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    finder = Finder(args.weights)
    predictor = Predictor(threads=1, refine=False)
    net = predictor.network
    names = [s for s in args.settings.split(";") if s] or list(SETTINGS)
    locs = {}
    for name in names:
        locs[name] = SeededLocalizer(net, finder, **SETTINGS[name])
    if args.baseline:
        locs["localizer (grid)"] = Localizer(net, method="pose")
    result = {"split": args.split, "weights": str(args.weights), "student": str(net.weights),
              "cpu": torch.backends.cpu.get_cpu_capability(), "settings": {k: {a: str(b) for a, b in v.items()} for k, v in
                                                                            SETTINGS.items() if k in names}}
    pck = PCK(0.2)
    for set_name in filter(None, args.sets.split(",")):
        images, gt, vis, norm = load_set(args.data, args.split, set_name, args.limit)
        true_boxes = [joints_extent(j, v) for j, v in zip(gt, vis)]
        pts = {k: [] for k in ["true box", *locs]}
        ms = {k: [] for k in pts}
        crops = {k: 0 for k in locs}
        t0 = time.time()
        for img, tb in zip(images, true_boxes):
            t = time.perf_counter()
            pts["true box"].append(predictor(img, [[float(v) for v in tb]]).keypoints[0])
            ms["true box"].append(time.perf_counter() - t)
            for k, loc in locs.items():
                before = loc.stats["forward_crops"]
                t = time.perf_counter()
                pts[k].append(loc.locate(img).keypoints[0])
                ms[k].append(time.perf_counter() - t)
                crops[k] += loc.stats["forward_crops"] - before
        rows = {}
        for k in pts:
            t = 1e3 * np.array(ms[k][args.warmup:])
            rows[k] = {"pck": pck(np.stack(pts[k]), gt, vis, norm)["mean"], "ms_median": float(np.median(t)),
                       "ms_p90": float(np.percentile(t, 90)),
                       "crops_per_image": crops.get(k, len(images)) / len(images)}
        result[set_name] = {"people": len(images), "rows": rows}
        ref = rows["true box"]["pck"]
        print(f"\n== {set_name} ({args.split}, {len(images)} people, {time.time() - t0:.0f} s; one thread, "
              f"{result['cpu']})")
        print(f"  {'setting':<30} {'PCK@0.2':>7} {'vs true':>7} {'crops':>6} {'ms med':>7} {'ms p90':>7}")
        for k, r in rows.items():
            print(f"  {k:<30} {r['pck']:7.1f} {r['pck'] - ref:+7.1f} {r['crops_per_image']:6.1f} "
                  f"{r['ms_median']:7.2f} {r['ms_p90']:7.2f}")
    out = args.out or HERE / "results" / f"seeded_{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
