#!/usr/bin/env python
"""MediaPipe Pose and this project's shipped models side by side on the LSPET test slice, in one run.

Accuracy is the project's PCK@0.2 rule (torso = left shoulder to right hip; visible joints; people whose torso
joints are not visible skipped) over the **12 limb joints** (BlazePose has no neck or head top; LSP joints 0-11),
and for our models also over all 14. Two settings:

* ``box``: the true box, the padded square of the visible joints (``record.center`` / ``record.scale``, the crop
  that ``posedistill evaluate`` takes). Ours: ``Predictor.predict`` with that box. MediaPipe: the same square
  cut out of the photo (black where it leaves the photo; native resolution), its landmarks mapped back.
* ``photo``: the whole photo. Ours: ``Localizer`` with the defaults of ``posedistill predict`` without
  ``--bbox`` (the person scorer beside the weights where there is one). MediaPipe: its own person detector.

MediaPipe always runs its detector (the legacy graph has no box input), so it can miss a person even in the
``box`` crop; a person it misses counts as all joints wrong (``miss %``, over the scored people). Ours always
returns a person. Our rows come without flip test (what ``predict`` does) and with it (``+flip``: the crop and its
mirror averaged, as ``evaluate`` does; on the photo, one more pass on the box the localiser found, whose time is
added to the localisation's). Timing: milliseconds a photo from the decoded image in memory to keypoints in image
pixels (crop included, file decoding not), median and 90th percentile after ``--warmup`` untimed photos, ours on
``--threads`` threads (``torch.set_num_threads``). MediaPipe's TFLite graphs run XNNPACK on one thread on
desktop CPUs by default (no knob in the legacy API): the worker reports its CPU time over wall time while timing
(at most 1.0: one core). Timings need a quiet machine.

MediaPipe needs numpy < 2, so it runs in its own interpreter (``--mediapipe-python``, default
``$POSEDISTILL_MEDIAPIPE_PYTHON``; without either its rows are skipped with a note), which executes
``mediapipe_worker.py`` beside this file; they exchange JSON. See ``README.md`` here for that environment.
Writes ``benchmarks/results/mediapipe_lspet.json`` (``--out``). Never tune on the test slice (``--split val``).

    python benchmarks/peers/mediapipe_lspet.py --mediapipe-python /path/to/mpvenv/bin/python
    python benchmarks/peers/mediapipe_lspet.py --limit 40 --no-timing --draw docs/mediapipe_mapping.jpg
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mediapipe_lspet.json"
WORKER = HERE / "mediapipe_worker.py"

# BlazePose landmark (33-point topology) for each LSP joint 0-11; BlazePose's left/right is the person's, as LSP's
# (checked by drawing: docs/mediapipe_mapping.jpg). LSP 12 (neck) and 13 (head top) have no landmark.
BLAZEPOSE_FOR_LSP = (
    28,  # 0 right ankle
    26,  # 1 right knee
    24,  # 2 right hip
    23,  # 3 left hip
    25,  # 4 left knee
    27,  # 5 left ankle
    16,  # 6 right wrist
    14,  # 7 right elbow
    12,  # 8 right shoulder
    11,  # 9 left shoulder
    13,  # 10 left elbow
    15,  # 11 left wrist
)
LIMB_JOINTS = tuple(range(len(BLAZEPOSE_FOR_LSP)))  # the 12 LSP joints both models have
LSP_JOINTS = 14


def blazepose_to_lsp(landmarks, *, swap_sides: bool = False) -> np.ndarray:
    """(14, 2) LSP joints from BlazePose's 33 landmarks (``[[x, y, ...], ...]`` in image pixels); NaN for the neck
    and head top, and everywhere when ``landmarks`` is None (no person found). ``swap_sides`` exchanges left and
    right (a check of the mapping: it should score lower)."""
    out = np.full((LSP_JOINTS, 2), np.nan)
    if landmarks is None:
        return out
    lm = np.asarray(landmarks, np.float64)[:, :2]
    if lm.shape != (33, 2):
        raise ValueError(f"expected 33 BlazePose landmarks, got {lm.shape}")
    index = list(BLAZEPOSE_FOR_LSP)
    if swap_sides:
        index = [index[j] for j in (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6)]  # LSP's left/right flip pairs
    out[list(LIMB_JOINTS)] = lm[index]
    return out


def pck(pred, gt, visible, norm, joints=None, threshold: float = 0.2) -> dict:
    """PCK@``threshold`` by the project's rule (:func:`posedistill.evaluation.joint_errors`: visible joints of
    people with a valid torso), mean over the per-joint figures of ``joints`` (default all); a NaN prediction (a
    person not found, a joint the model lacks) counts as wrong, not as skipped."""
    from posedistill.evaluation import joint_errors

    pred = np.asarray(pred, np.float64)
    found = np.isfinite(pred).all(-1)
    err = joint_errors(np.where(found[..., None], pred, 0.0), gt, visible, norm)
    err = np.where(found | np.isnan(err), err, np.inf)
    if joints is not None:
        err = err[:, list(joints)]
    valid = ~np.isnan(err)
    count = valid.sum(0)
    hits = (valid & (err <= threshold)).sum(0)
    per_joint = np.where(count > 0, 100.0 * hits / np.maximum(count, 1), np.nan)
    mean = float(np.nanmean(per_joint)) if count.any() else float("nan")
    return {"mean": mean, "per_joint": per_joint.tolist(), "count": count.tolist()}


def ms_stats(ms: list[float] | None) -> dict:
    if not ms:
        return {"ms_median": None, "ms_p90": None, "ms_mean": None, "timed": 0}
    a = np.asarray(ms)
    return {"ms_median": float(np.median(a)), "ms_p90": float(np.percentile(a, 90)), "ms_mean": float(a.mean()),
            "timed": len(a)}


def true_box(rec, padding: float) -> list[float]:
    """The ``[x, y, w, h]`` box whose padded square (``box_to_square``) is the record's crop square."""
    side = rec.scale / padding
    return [float(rec.center[0] - side / 2), float(rec.center[1] - side / 2), float(side), float(side)]


# -- our models
def run_ours(weights: Path, people, images, *, threads: int, warmup: int, timing: bool) -> dict:
    """Keypoints (N, K, 2) and per-photo ms of one checkpoint in the four settings."""
    from posedistill.inference.predictor import Predictor

    predictor = Predictor(weights, threads=threads)  # what `posedistill predict` builds (--locate auto, 1 person)
    boxes = [true_box(r, predictor.meta.box_padding) for r in people]
    found_boxes: list[list[float]] = []

    def photo(i):
        found = predictor(images[i])
        found_boxes.append(found.boxes[0])
        return found.keypoints[0]

    settings = {
        "box": lambda i: predictor(images[i], [boxes[i]]).keypoints[0],
        "box+flip": lambda i: predictor(images[i], [boxes[i]], flip=True).keypoints[0],
        "photo": photo,
        "photo+flip": lambda i: predictor(images[i], [found_boxes[i]], flip=True).keypoints[0],
    }
    out = {"weights": str(weights), "model": predictor.meta.arch,
           "input_size": predictor.meta.input_size, "scorer": predictor.localizer.scorer is not None, "settings": {}}
    for name, fn in settings.items():
        if timing and name != "photo+flip":  # photo+flip reuses photo's boxes; warm up every other path
            for i in range(min(warmup, len(people))):
                fn(i)
            if name == "photo":
                found_boxes.clear()
        pts, ms = [], []
        for i in range(len(people)):
            t = time.perf_counter()
            pts.append(fn(i))
            ms.append(1e3 * (time.perf_counter() - t))
        if timing and name == "photo+flip":  # the localisation is part of this path's time
            ms = [a + b for a, b in zip(ms, out["settings"]["photo"]["ms"])]
        out["settings"][name] = {"pred": np.asarray(pts, np.float64), "ms": ms if timing else None}
        print(f"  {weights.name} {name}: done", flush=True)
    return out


# -- MediaPipe (another interpreter)
def box_setting(scale: float) -> str:
    return "box" if scale == 1.0 else f"box x{scale:g}"


def run_mediapipe(python: str, people, *, warmup: int, box_scales=(1.0,)) -> dict:
    """The worker's JSON: per setting, per person, 33 landmarks in image pixels (or None) and ms. MediaPipe's
    crop in the setting ``box x{k}`` is the true square scaled by k about its centre (``box``: k = 1)."""
    job = {"warmup": warmup, "settings": {
        **{box_setting(k): [{"image": str(r.image), "square": [float(r.center[0]), float(r.center[1]),
                                                                 float(r.scale * k)]} for r in people]
           for k in box_scales},
        "photo": [{"image": str(r.image)} for r in people]}}
    with tempfile.TemporaryDirectory(prefix="mediapipe_lspet_") as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(job), encoding="utf-8")
        env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.run([python, str(WORKER), str(src), str(dst)], env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not dst.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SystemExit(f"mediapipe worker ({python}) failed with status {proc.returncode}: {tail[0]}")
        return json.loads(dst.read_text(encoding="utf-8"))


# -- drawing
def draw_mapping(path: Path, people, images, mediapipe: list, ours: np.ndarray | None, count: int,
                 size: int = 160) -> None:
    """A grid, one row per person (the first ``count`` with a visible torso that MediaPipe found): the ground
    truth, MediaPipe's landmarks mapped to LSP joints, and our student, on the person's crop; left limbs blue,
    right red, centre green (``posedistill.inference.drawing``). Where the mapping is right, the colours agree."""
    import cv2

    from posedistill.data.transforms import crop_person
    from posedistill.inference.drawing import draw_skeleton
    from posedistill.io import atomic_open

    picked = [i for i in range(len(people)) if np.isfinite(people[i].norm) and mediapipe[i] is not None][:count]
    rows = []
    for i in picked:
        rec = people[i]
        crop, matrix = crop_person(images[i], rec.center, rec.scale * 1.2, 0.0, size)
        mp = blazepose_to_lsp(mediapipe[i])
        columns = [("truth", rec.joints, rec.visible > 0), ("MediaPipe", mp, np.isfinite(mp).all(-1))]
        if ours is not None:
            columns.append(("student", ours[i], np.ones(LSP_JOINTS, bool)))
        panels = []
        for label, pts, shown in columns:
            panel = crop.copy()
            xy = np.nan_to_num(np.asarray(pts, np.float64)) @ matrix[:, :2].T + matrix[:, 2]
            draw_skeleton(panel, xy, "lsp", shown=shown, line=2, radius=2)
            for colour, width in (((255, 255, 255), 2), ((0, 0, 0), 1)):
                cv2.putText(panel, f"{label} {rec.image.stem}" if label == "truth" else label, (3, 13),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, width, cv2.LINE_AA)
            panels.append(panel)
        rows.append(np.concatenate(panels, axis=1))
    if not rows:
        print("nothing to draw (MediaPipe found nobody)")
        return
    ok, data = cv2.imencode(".jpg", np.concatenate(rows, axis=0), [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    with atomic_open(path) as f:
        f.write(data.tobytes())
    print(f"drew {len(rows)} people (truth | MediaPipe | student; left blue, right red) to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--limit", type=int, default=None, help="first N people of the split")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "POSEDISTILL_DATA", ROOT.parent / "shared" / "data")) / "lspet", help="LSPET folder")
    parser.add_argument("--weights", type=Path, action="append", default=[],
                        help="another checkpoint to add (repeatable); the shipped ones always run")
    parser.add_argument("--mediapipe-python", default=os.environ.get("POSEDISTILL_MEDIAPIPE_PYTHON"),
                        help="interpreter with mediapipe==0.10.21 (default: $POSEDISTILL_MEDIAPIPE_PYTHON)")
    parser.add_argument("--mediapipe-box-scales", default="1,2",
                        help="comma list: MediaPipe's crops in the box settings, as multiples of the true square "
                             "(1: the crop ours get; 2: MediaPipe's best on the validation slice)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for our models")
    parser.add_argument("--warmup", type=int, default=3, help="untimed photos before each timed path")
    parser.add_argument("--no-timing", action="store_true", help="accuracy only (no warm-up, no ms columns)")
    parser.add_argument("--draw", type=Path, default=None, help="draw the mapping check (JPEG) to this file")
    parser.add_argument("--draw-count", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch

    from posedistill.data.images import load_image
    from posedistill.data.readers import lspet_split
    from posedistill.io import atomic_write_json
    from posedistill.models.pretrained import default_weights, sha256_file, shipped_students

    torch.set_num_threads(args.threads)
    timing = not args.no_timing
    warmup = args.warmup if timing else 0
    capability = torch.backends.cpu.get_cpu_capability()
    people = lspet_split(args.data, args.split)
    people = people[:args.limit] if args.limit else people
    images = [load_image(r.image) for r in people]
    gt = np.stack([r.joints for r in people]).astype(np.float64)
    visible = np.stack([r.visible for r in people])
    norm = np.array([r.norm for r in people])
    scored = np.isfinite(norm) & (norm > 0)
    print(f"LSPET {args.split}: {len(people)} people, {int(scored.sum())} with a visible torso (scored); "
          f"{args.threads} torch thread(s); CPU {capability}", flush=True)

    names, default = shipped_students()
    models = [(f"student {name}", default_weights(model=name)) for name in names]
    models += [("teacher", default_weights(role="teacher"))]  # every shipped pose model
    models += [(f"--weights {w.name}", w) for w in args.weights]
    rows, preds = [], {}
    for role, weights in models:
        res = run_ours(weights, people, images, threads=args.threads, warmup=warmup, timing=timing)
        for name, s in res["settings"].items():
            preds[(role, name)] = s["pred"]
            rows.append({"model": f"{role} {res['model']}", "weights": weights.name,
                         "sha256": sha256_file(weights), "setting": name, "flip": name.endswith("+flip"),
                         "pck12": pck(s["pred"], gt, visible, norm, LIMB_JOINTS)["mean"],
                         "pck14": pck(s["pred"], gt, visible, norm)["mean"],
                         "per_joint14": pck(s["pred"], gt, visible, norm)["per_joint"],
                         "miss_rate": 0.0, **ms_stats(s["ms"]), "cpu": capability, "threads": args.threads})

    mediapipe = None
    if args.mediapipe_python:
        print(f"MediaPipe: {args.mediapipe_python} {WORKER.name}", flush=True)
        mediapipe = run_mediapipe(args.mediapipe_python, people, warmup=warmup,
                                  box_scales=[float(k) for k in args.mediapipe_box_scales.split(",")])
        for name, s in mediapipe["settings"].items():
            landmarks = [r["landmarks"] for r in s["rows"]]
            pred = np.stack([blazepose_to_lsp(lm) for lm in landmarks])
            swapped = np.stack([blazepose_to_lsp(lm, swap_sides=True) for lm in landmarks])
            missed = np.array([lm is None for lm in landmarks])
            rows.append({"model": f"MediaPipe Pose {mediapipe['mediapipe']} full", "weights":
                         "pose_detection.tflite + pose_landmark_full.tflite", "setting": name, "flip": False,
                         "pck12": pck(pred, gt, visible, norm, LIMB_JOINTS)["mean"], "pck14": None,
                         "per_joint12": pck(pred, gt, visible, norm, LIMB_JOINTS)["per_joint"],
                         "pck12_sides_swapped": pck(swapped, gt, visible, norm, LIMB_JOINTS)["mean"],
                         "miss_rate": float(missed[scored].mean()) if scored.any() else float("nan"),
                         "miss_rate_all_people": float(missed.mean()),
                         "missed": [people[i].image.name for i in np.flatnonzero(missed)],
                         **ms_stats([r["ms"] for r in s["rows"]] if timing else None), "cpu": capability,
                         "threads": 1, "cpu_over_wall": s["cpu_over_wall"], "process_threads": s["threads"]})
    else:
        print("MediaPipe rows skipped: no --mediapipe-python and $POSEDISTILL_MEDIAPIPE_PYTHON is not set "
              "(benchmarks/peers/README.md says how to make that interpreter)")

    def fmt(v, spec=".1f"):
        return "-" if v is None else format(v, spec)

    print(f"\nLSPET {args.split}, {int(scored.sum())} scored people: PCK@0.2 (torso), 12 limb joints and all 14; "
          f"ms a photo on {args.threads} thread(s) (MediaPipe: 1), CPU {capability}")
    print(f"{'model':<44} {'setting':<11} {'PCK12':>6} {'PCK14':>6} {'miss %':>6} {'ms med':>7} {'ms p90':>7}  cpu")
    for r in rows:
        print(f"{r['model']:<44} {r['setting']:<11} {fmt(r['pck12']):>6} {fmt(r['pck14']):>6} "
              f"{fmt(100 * r['miss_rate']):>6} {fmt(r['ms_median']):>7} {fmt(r['ms_p90']):>7}  {r['cpu']}")
    if mediapipe:
        for r in rows:
            if "pck12_sides_swapped" in r:
                print(f"check: MediaPipe {r['setting']} with left and right swapped {r['pck12_sides_swapped']:.1f} "
                      f"(as mapped {r['pck12']:.1f}); CPU time / wall time while timing "
                      f"{fmt(r['cpu_over_wall'], '.2f')}")
    if args.draw:
        if mediapipe is None:
            print("--draw needs the MediaPipe rows")
        else:
            name = box_setting(max(float(k) for k in args.mediapipe_box_scales.split(",")))
            draw_mapping(args.draw, people, images, [r["landmarks"] for r in mediapipe["settings"][name]["rows"]],
                         preds.get((f"student {default}", "box")), args.draw_count)
    atomic_write_json(args.out, {
        "split": args.split, "people": len(people), "scored": int(scored.sum()), "threads": args.threads,
        "warmup": warmup, "timing": timing, "cpu": capability, "torch": torch.__version__,
        "mediapipe": {k: v for k, v in mediapipe.items() if k != "settings"} if mediapipe else None,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
