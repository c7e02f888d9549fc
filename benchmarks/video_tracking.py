#!/usr/bin/env python
"""Video tracking and smoothing on synthetic clips with exact ground truth in every frame.

Each clip is one LSPET photo moving over a pixelated background (another photo): over ``--frames`` frames at
25 frames/s it drifts along a Lissajous path, zooms in and out by +-25 % and rotates by +-12 degrees, all
smoothly. Runs, per clip:

* ``gt-box``: the ground-truth box every frame (no tracking, no smoothing): the model's own ceiling;
* ``gt-box+smooth``: the same keypoints through the One Euro filter (the filter's effect alone);
* ``locate``: the person localised afresh in every frame (no tracking, no smoothing);
* ``track``: box from the previous frame's joints, re-localised when the mean joint score drops;
* ``track+smooth``: the same with the One Euro filter on the keypoints.

Metrics: PCK@0.2 by torso over all frames; jitter = mean over frames and visible joints of
|(p_t - p_t-1) - (g_t - g_t-1)|, the frame-to-frame motion that the true motion does not explain, in % of the
torso (and px); frames/s of each run. Writes ``benchmarks/results/video_tracking_<split>.json``.

``--tune`` chooses the filter on ``--split val``: the network runs once per clip (ground-truth box, and tracking
without smoothing; the tracker's box comes from the raw joints, so smoothing is a pure post-process), then every
(min_cutoff, beta) of a grid filters those keypoints; the rule keeps the setting with the least jitter while
tracking whose PCK is within ``--max-pck-loss`` (1.0) of the unsmoothed keypoints'. Writes
``video_tracking_tune_val.json``; report with the chosen values on ``--split test``.

    python benchmarks/video_tracking.py --split val --clips 20 --frames 120 --tune
    python benchmarks/video_tracking.py --split test --clips 20 --frames 120
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from posedistill.data.scenes import default_lspet_root, joints_box, lspet_people, pixelated, place, similarity, transform_points

from posedistill.data.images import load_image
from posedistill.data.readers import lspet_split
from posedistill.evaluation import PCK
from posedistill.inference.predictor import Predictor
from posedistill.io import atomic_write_json
from posedistill.inference.tracking import OneEuroFilter, PoseTracker, TrackingConfig

RESULTS = Path(__file__).resolve().parent / "results"
FPS = 25.0


def make_clip(rec, background_photo: np.ndarray, frames: int, rng: np.random.Generator):
    """Frames (list of BGR), joints (T, K, 2) and torso (T,) of one photo moving over a pixelated background."""
    image = load_image(rec.image)
    h, w = image.shape[:2]
    person = max(joints_box(rec.joints, rec.visible)[2:])
    cw, ch = int(2.2 * max(h, w)), int(1.8 * max(h, w))
    base = rng.uniform(0.3, 0.45) * ch / person
    base = min(base, 0.6 * ch / max(h, w))
    bg = pixelated(background_photo, cw, ch)
    centre_from = np.array([w / 2.0, h / 2.0])
    ph = rng.uniform(0, 2 * math.pi, size=4)
    out_frames, joints, torso = [], [], []
    for t in range(frames):
        s = t / FPS
        scale = base * (1.0 + 0.25 * math.sin(2 * math.pi * s / 4.0 + ph[0]))
        angle = 12.0 * math.sin(2 * math.pi * s / 3.0 + ph[1])
        margin = 0.5 * scale * max(h, w)
        cx = cw / 2 + (cw / 2 - margin) * 0.8 * math.sin(2 * math.pi * s / 5.0 + ph[2])
        cy = ch / 2 + (ch / 2 - margin) * 0.6 * math.sin(2 * math.pi * s / 3.5 + ph[3])
        m = similarity(scale, angle, centre_from, np.array([cx, cy]))
        out_frames.append(place(image, bg, m))
        joints.append(transform_points(rec.joints, m))
        torso.append(rec.norm * scale)
    return out_frames, np.array(joints), np.array(torso)


def jitter(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, torso: np.ndarray) -> tuple[float, float]:
    """Mean |(p_t - p_t-1) - (g_t - g_t-1)| over frames and visible joints: (% of torso, px)."""
    err = np.linalg.norm(np.diff(pred, axis=0) - np.diff(gt, axis=0), axis=-1)  # (T-1, K)
    err = err[:, visible > 0]
    return float(100 * np.mean(err / torso[1:, None])), float(np.mean(err))


def run(name: str, predictor: Predictor, frames, gt_boxes, cfg: TrackingConfig | None
        ) -> tuple[np.ndarray, float, int, int]:
    """Keypoints (T, K, 2), seconds, re-localised frames and re-checks that moved the track."""
    if name.startswith("gt-box"):
        start = time.perf_counter()
        pts = np.array([predictor(f, [b]).keypoints[0] for f, b in zip(frames, gt_boxes)])
        if cfg is not None:  # the filter alone, on the ground-truth box's keypoints
            pts = smooth_offline(pts, np.array([max(b[2:]) for b in gt_boxes]), cfg.min_cutoff, cfg.beta,
                                 cfg.d_cutoff)
        return pts, time.perf_counter() - start, 0, 0
    tracker = PoseTracker(predictor, cfg)  # the predictor's localiser (and its person scorer, looked up once)
    start = time.perf_counter()
    pts = np.array([tracker.update(f, i / FPS).keypoints[0] for i, f in enumerate(frames)])
    return pts, time.perf_counter() - start, tracker.relocalized, tracker.switched


MIN_CUTOFFS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
BETAS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def smooth_offline(pts: np.ndarray, sides: np.ndarray, min_cutoff: float, beta: float, d_cutoff: float = 1.0
                   ) -> np.ndarray:
    """The keypoints of one clip (T, K, 2) through a fresh One Euro filter, frame by frame (``sides``: box side)."""
    f = OneEuroFilter(min_cutoff, beta, d_cutoff)
    return np.array([f(p, i / FPS, scale=float(s)) for i, (p, s) in enumerate(zip(pts, sides))])


def tune(clips: list[dict], max_pck_loss: float) -> dict:
    """Grid of One Euro settings over the raw keypoints of ``clips`` (each: ``gt``, ``vis``, ``torso`` and, per
    source ``gt-box`` / ``track``, ``pts`` and box ``sides``). Returns the rows and the chosen setting."""
    pck = PCK(0.2)

    def score(source: str, params: tuple[float, float] | None) -> tuple[float, float]:
        preds = [c[source]["pts"] if params is None else smooth_offline(c[source]["pts"], c[source]["sides"], *params)
                 for c in clips]
        p = pck(np.concatenate(preds), np.concatenate([c["gt"] for c in clips]),
                np.concatenate([np.repeat(c["vis"][None], len(c["gt"]), 0) for c in clips]),
                np.concatenate([c["torso"] for c in clips]))["mean"]
        return p, float(np.mean([jitter(q, c["gt"], c["vis"], c["torso"])[0] for q, c in zip(preds, clips)]))

    raw = {src: score(src, None) for src in ("gt-box", "track")}
    rows = []
    for mc in MIN_CUTOFFS:
        for beta in BETAS:
            row = {"min_cutoff": mc, "beta": beta}
            for src in ("gt-box", "track"):
                row[f"{src}_pck"], row[f"{src}_jitter"] = score(src, (mc, beta))
            rows.append(row)
    ok = [r for r in rows if r["track_pck"] >= raw["track"][0] - max_pck_loss]
    chosen = min(ok, key=lambda r: r["track_jitter"]) if ok else None
    return {"raw": {k: {"pck": v[0], "jitter": v[1]} for k, v in raw.items()}, "rows": rows, "chosen": chosen,
            "rule": f"least tracking jitter with tracking PCK >= unsmoothed - {max_pck_loss}"}


def run_tune(args, predictor: Predictor, clip_iter) -> None:
    clips = []
    for n, (rec, frames, gt, torso, gt_boxes) in enumerate(clip_iter):
        pts, _, _, _ = run("gt-box", predictor, frames, gt_boxes, None)
        tracker = PoseTracker(predictor, TrackingConfig(track=True, smooth=False))
        people = [tracker.update(f, i / FPS) for i, f in enumerate(frames)]
        clips.append({"gt": gt, "vis": rec.visible, "torso": torso,
                      "gt-box": {"pts": pts, "sides": np.array([max(b[2:]) for b in gt_boxes])},
                      "track": {"pts": np.array([p.keypoints[0] for p in people]),
                                "sides": np.array([max(p.boxes[0][2:]) for p in people])}})
        print(f"clip {n + 1}/{args.clips} ({rec.image.name})", flush=True)
    result = tune(clips, args.max_pck_loss)
    print(f"LSPET {args.split}: {len(clips)} clips x {args.frames} frames; weights {predictor.network.weights.name}; "
          f"rule: {result['rule']}")
    print(f"{'min_cutoff':>10} {'beta':>5} {'gt-box PCK':>10} {'jitter':>7} {'track PCK':>10} {'jitter':>7}")
    for name, r in result["raw"].items():
        print(f"{'(none: ' + name + ')':>17}  {r['pck']:>8.1f} {r['jitter']:>7.2f}")
    for r in result["rows"]:
        mark = "  <- chosen" if r is result["chosen"] else ""
        print(f"{r['min_cutoff']:>10g} {r['beta']:>5g} {r['gt-box_pck']:>10.1f} {r['gt-box_jitter']:>7.2f} "
              f"{r['track_pck']:>10.1f} {r['track_jitter']:>7.2f}{mark}")
    out = args.out or RESULTS / f"video_tracking_tune_{args.split}.json"
    atomic_write_json(out, {"split": args.split, "clips": len(clips), "frames": args.frames, "fps": FPS,
                            "weights": predictor.network.weights.name, **result})
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--min-cutoff", type=float, default=None)
    parser.add_argument("--beta", type=float, default=None)
    parser.add_argument("--relocalize-below", type=float, default=None)
    parser.add_argument("--recheck-every", type=int, default=None, help="tracked frames between whole-frame looks")
    parser.add_argument("--recheck-margin", type=float, default=None)
    parser.add_argument("--keep-joints", type=int, default=None, help="joints that span the next frame's box")
    parser.add_argument("--margin", type=float, default=None, help="widening of that box")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--tune", action="store_true", help="grid of One Euro settings (use --split val)")
    parser.add_argument("--max-pck-loss", type=float, default=1.0, help="--tune: PCK the filter may cost")
    parser.add_argument("--runs", default=None,
                        help="comma list of runs to measure (default all); the others' rows are kept from --out")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    root = default_lspet_root()
    people = lspet_people(root, args.split, need_torso=True)
    pick = np.random.default_rng(args.seed).choice(len(people), size=min(args.clips, len(people)), replace=False)
    backgrounds = lspet_split(root, "train6500")  # the scenes of every earlier figure (before the 8,800-image split)
    predictor = Predictor(args.weights, threads=args.threads)
    tuned = {k: v for k, v in {"min_cutoff": args.min_cutoff, "beta": args.beta,
                               "relocalize_below": args.relocalize_below, "recheck_every": args.recheck_every,
                               "recheck_margin": args.recheck_margin, "keep_joints": args.keep_joints,
                               "margin": args.margin}.items() if v is not None}
    configs = {
        "gt-box": None,
        "gt-box+smooth": TrackingConfig(**tuned),
        "locate": TrackingConfig(track=False, smooth=False, **tuned),
        "track": TrackingConfig(track=True, smooth=False, **tuned),
        "track+smooth": TrackingConfig(track=True, smooth=True, **tuned),
    }
    if args.runs:
        unknown = set(args.runs.split(",")) - set(configs)
        if unknown:
            parser.error(f"unknown runs {', '.join(sorted(unknown))}; choose among {', '.join(configs)}")
        configs = {k: v for k, v in configs.items() if k in args.runs.split(",")}
    acc = {name: {"pred": [], "gt": [], "vis": [], "torso": [], "jit": [], "jit_px": [], "s": 0.0, "reloc": 0,
                  "switched": 0, "clips": []} for name in configs}

    def clip_iter():
        for idx in sorted(pick):
            rec = people[idx]
            rng = np.random.default_rng([args.seed, rec.meta["index"]])
            bg = load_image(backgrounds[int(rng.integers(len(backgrounds)))].image)
            frames, gt, torso = make_clip(rec, bg, args.frames, rng)
            yield rec, frames, gt, torso, [joints_box(g, rec.visible) for g in gt]

    if args.tune:
        return run_tune(args, predictor, clip_iter())
    pck = PCK(0.2)
    for n, (rec, frames, gt, torso, gt_boxes) in enumerate(clip_iter()):
        for name, cfg in configs.items():
            pred, seconds, reloc, switched = run(name, predictor, frames, gt_boxes, cfg)
            a = acc[name]
            a["pred"].append(pred), a["gt"].append(gt), a["torso"].append(torso)
            a["vis"].append(np.repeat(rec.visible[None], len(frames), 0))
            j, jpx = jitter(pred, gt, rec.visible, torso)
            a["jit"].append(j), a["jit_px"].append(jpx)
            a["s"] += seconds
            a["reloc"] += reloc
            a["switched"] += switched
            a["clips"].append({"image": rec.image.name, "pck": pck(pred, gt, a["vis"][-1], torso)["mean"],
                               "jitter_torso_pct": j,
                               "relocalised_frames": reloc, "rechecks_switched": switched})
        print(f"clip {n + 1}/{len(pick)} ({rec.image.name})", flush=True)
    rows = []
    total_frames = len(pick) * args.frames
    for name, a in acc.items():
        rows.append({
            "run": name,
            "pck": pck(np.concatenate(a["pred"]), np.concatenate(a["gt"]), np.concatenate(a["vis"]),
                       np.concatenate(a["torso"]))["mean"],
            "jitter_torso_pct": float(np.mean(a["jit"])), "jitter_px": float(np.mean(a["jit_px"])),
            "frames_per_s": total_frames / a["s"], "relocalised_frames": a["reloc"],
            "rechecks_switched": a["switched"],
            "person_scorer": predictor.localizer.scorer is not None,
            "per_clip": a["clips"],  # where a mean over 20 clips comes from
        })
    out = args.out or RESULTS / f"video_tracking_{args.split}.json"
    if args.runs and out.is_file():  # keep the rows of the runs not measured now
        old = json.loads(out.read_text())
        if (old.get("clips"), old.get("frames")) == (len(pick), args.frames):
            fresh = {r["run"] for r in rows}
            rows = [r for r in old["rows"] if r["run"] not in fresh] + rows
            order = ["gt-box", "gt-box+smooth", "locate", "track", "track+smooth"]
            rows.sort(key=lambda r: order.index(r["run"]))
    cfg = TrackingConfig(**tuned)
    print(f"LSPET {args.split}: {len(pick)} clips x {args.frames} frames at {FPS:g} fps; weights "
          f"{predictor.network.weights.name}; One Euro min_cutoff={cfg.min_cutoff} beta={cfg.beta} "
          f"d_cutoff={cfg.d_cutoff}; re-localise below {cfg.relocalize_below}; re-check every "
          f"{cfg.recheck_every or 'never'} (margin {cfg.recheck_margin})")
    print(f"{'run':<13} {'PCK@0.2':>8} {'jitter %torso':>14} {'jitter px':>10} {'relocalised':>11} {'switched':>8} "
          f"{'frames/s':>9}")
    for r in rows:
        print(f"{r['run']:<13} {r['pck']:>8.1f} {r['jitter_torso_pct']:>14.2f} {r['jitter_px']:>10.2f} "
              f"{r['relocalised_frames']:>11} {r.get('rechecks_switched', 0):>8} {r['frames_per_s']:>9.1f}")
    atomic_write_json(out, {"split": args.split, "clips": len(pick), "frames": args.frames, "fps": FPS,
                            "weights": predictor.network.weights.name,
                            "filter": {"min_cutoff": cfg.min_cutoff, "beta": cfg.beta, "d_cutoff": cfg.d_cutoff,
                                       "relocalize_below": cfg.relocalize_below,
                                       "recheck_every": cfg.recheck_every, "recheck_margin": cfg.recheck_margin},
                            "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
