#!/usr/bin/env python
"""Per-photo latency of each shipped student, from the JPEG on disk to keypoints: with a box and without (the
predictor finds the person), one and two threads, eager PyTorch and ONNX Runtime, and MediaPipe Pose beside it
when its interpreter is given.

Photos: the first ``--photos`` of the project's LSPET test split (``../shared/data/lspet``, im07001-07500). Each
setting is a worker process of its own, kept warm and fed one photo at a time over a pipe: ours
(:class:`~posedistill.inference.predictor.Predictor` as ``posedistill predict`` builds it: the shipped student's
checkpoint and its shipped ONNX file; for ``--weights``, the ONNX file made by ``posedistill export`` in a temporary
folder, whose candidates the person scorer beside the checkpoint ranks) and MediaPipe's (``benchmarks/peers/mediapipe_worker.py --lines`` in its own interpreter). The
settings alternate photo by photo, in a rotating order, so that other load on a shared machine falls on all of
them alike; the per-photo ratios against a reference setting on the same photo are the figures to trust there.

Timed per photo: decoding the file, then (ours) :meth:`Predictor.prepare` (the crop of a given box) and
:meth:`Predictor.estimate` with a :class:`~posedistill.inference.timing.Clock`, whose stage times are reported:
``decode`` (the file), ``find`` (the person search, its own network passes included), ``crop``, ``network``
(the pose network on the crops of given boxes) and ``heatmaps`` (their decoding). MediaPipe always runs its own
person detector (its legacy graph takes no box); its box setting gives it the person's padded square x2 cut from
the photo (its best crop on the validation slice, ``benchmarks/peers/mediapipe_lspet.py``). "threads" sets
PyTorch's and ONNX Runtime's intra-op threads and OpenCV's; MediaPipe runs one (XNNPACK's default on desktop).
PCK@0.2 (the project's rule, 14 joints; MediaPipe: its 12 limb joints) is printed beside as a check of the paths.
Writes ``benchmarks/results/photo_latency.json``.

    python benchmarks/photo_latency.py --mediapipe-python /work/mpvenv/bin/python
    python benchmarks/photo_latency.py --photos 20 --backends torch --threads 1     # a quick look
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

import cv2
import numpy as np
import torch

from peers.mediapipe_lspet import LIMB_JOINTS, blazepose_to_lsp
from posedistill.data.images import load_image
from posedistill.data.readers import lspet_split
from posedistill.data.scenes import joints_box
from posedistill.evaluation import joint_errors
from posedistill.inference.localize import Localizer
from posedistill.inference.person_score import PersonScorer, sidecar_path
from posedistill.inference.predictor import Predictor
from posedistill.inference.timing import Clock, StageTimes
from posedistill.io import atomic_write_json
from posedistill.models.pretrained import default_weights, shipped_students

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "photo_latency.json"
MEDIAPIPE_WORKER = HERE / "peers" / "mediapipe_worker.py"
STAGES = ("decode", "find", "crop", "network", "heatmaps")
_CLOCK_STAGES = {"decode": "decode", "find": "locate", "crop": "crop", "network": "infer",
                 "heatmaps": "decode_heatmaps"}


# -- our worker: one Predictor, one photo per line
def serve_lines(weights: str, backend: str, threads: int, scorer_of: str | None) -> None:
    """Answer ``{"image": PATH, "box": [x, y, w, h] or null}`` lines with ``{"ms", "stages", "keypoints"}``."""
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    predictor = Predictor(weights, backend=backend, threads=threads)
    if scorer_of is not None and predictor.localizer is not None:  # the ONNX file has no scorer of its own
        predictor.localizer = Localizer(predictor.network, scorer=PersonScorer.load(sidecar_path(scorer_of)))
    print(json.dumps({"ready": True, "predictor": repr(predictor), "torch": torch.__version__,
                      "cpu": torch.backends.cpu.get_cpu_capability()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        times = StageTimes()
        clock = Clock(times)
        start = time.perf_counter()
        with clock("decode"):
            image = load_image(job["image"])
        with clock("crop"):
            prepared = predictor.prepare(image, None if job["box"] is None else [job["box"]])
        people = predictor.estimate([prepared], clock=clock)[0]
        ms = 1e3 * (time.perf_counter() - start)
        print(json.dumps({"ms": ms, "stages": {k: 1e3 * getattr(times, v) for k, v in _CLOCK_STAGES.items()},
                          "keypoints": people.keypoints[0].tolist()}), flush=True)


# -- the coordinator
class Worker:
    """A warm worker process spoken to one JSON line at a time."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            tail = self.proc.stderr.read().strip().splitlines()[-1:] or ["no output"]
            raise SystemExit(f"worker {self.name} stopped: {tail[0]}")
        return json.loads(line)

    def ask(self, job: dict) -> dict:
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def export_onnx(weights: Path, folder: Path) -> Path:
    """``posedistill export WEIGHTS --onnx FOLDER/<name>.onnx``."""
    out = folder / (weights.stem + ".onnx")
    subprocess.run([sys.executable, "-m", "posedistill", "export", str(weights), "--onnx", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, np.float64)
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)), "mean": float(a.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, metavar=("WEIGHTS", "BACKEND", "THREADS", "SCORER_OF"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "POSEDISTILL_DATA", HERE.parents[1] / "shared" / "data")) / "lspet", help="LSPET folder")
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--photos", type=int, default=100, help="the first N photos of the split")
    parser.add_argument("--warmup", type=int, default=5, help="untimed photos per setting first")
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint (default: the shipped students)")
    parser.add_argument("--models", default=None,
                        help="comma list of shipped students (default: every one; ignored with --weights)")
    parser.add_argument("--backends", default="torch,onnx")
    parser.add_argument("--threads", default="1,2", help="comma list")
    parser.add_argument("--mediapipe-python", default=os.environ.get("POSEDISTILL_MEDIAPIPE_PYTHON"),
                        help="interpreter with mediapipe==0.10.21 (benchmarks/peers/README.md)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        weights, backend, threads, scorer_of = args.worker
        serve_lines(weights, backend, int(threads), None if scorer_of == "-" else scorer_of)
        return

    people = lspet_split(args.data, args.split)[:args.photos]
    gt = np.stack([r.joints for r in people])
    visible = np.stack([r.visible for r in people])
    norm = np.array([r.norm for r in people])
    if args.weights is not None:
        models = {args.weights.stem: args.weights}
    else:
        names = args.models.split(",") if args.models else shipped_students()[0]
        models = {name: default_weights(model=name, backend="torch") for name in names}
    threads = [int(t) for t in args.threads.split(",")]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(threads))}
    workers: dict[str, Worker] = {}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="photo_latency_") as tmp:
        for model, weights in models.items():
            # a shipped student's own ONNX file (what predict runs by default; its scorer lies beside it), or an
            # export of --weights whose candidates the scorer beside the checkpoint ranks
            shipped = default_weights(model=model, backend="onnx") if args.weights is None else None
            files = {"torch": (weights, "-"),
                     "onnx": (shipped, "-") if shipped else (export_onnx(weights, Path(tmp)), str(weights))}
            for backend in args.backends.split(","):
                path, scorer_of = files[backend]
                for t in threads:
                    name = f"{model} {backend} {t}t"
                    workers[name] = Worker(name, [sys.executable, str(Path(__file__).resolve()), "--worker",
                                                  str(path), backend, str(t), scorer_of],
                                           {**env, "OMP_NUM_THREADS": str(t)})
        if args.mediapipe_python:
            workers["MediaPipe 1t"] = Worker("MediaPipe 1t", [args.mediapipe_python, str(MEDIAPIPE_WORKER),
                                                               "--lines"],
                                             {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"})
        else:
            print("MediaPipe skipped: no --mediapipe-python and $POSEDISTILL_MEDIAPIPE_PYTHON is not set "
                  "(benchmarks/peers/README.md says how to make that interpreter)")

        def job(worker: str, i: int, boxed: bool) -> dict:
            r = people[i]
            if worker.startswith("MediaPipe"):
                return {"image": str(r.image), "square": [float(r.center[0]), float(r.center[1]),
                                                          float(2 * r.scale)] if boxed else None}
            return {"image": str(r.image), "box": joints_box(r.joints, r.visible) if boxed else None}

        settings = [(w, boxed) for w in workers for boxed in (True, False)]
        for w, boxed in settings:  # warm-up
            for i in range(min(args.warmup, len(people))):
                workers[w].ask(job(w, i, boxed))
        answers: dict[tuple[str, bool], list[dict]] = {s: [] for s in settings}
        started = time.perf_counter()
        for i in range(len(people)):
            k = i % len(settings)
            for w, boxed in settings[k:] + settings[:k]:  # a rotating order: no setting always runs first
                answers[(w, boxed)].append(workers[w].ask(job(w, i, boxed)))
            if i % 20 == 19:
                print(f"  {i + 1} photos, {time.perf_counter() - started:.0f} s", flush=True)
                load.append(os.getloadavg()[0])
        info = {name: w.info for name, w in workers.items()}
        for w in workers.values():
            w.close()

    load.append(os.getloadavg()[0])
    capability = next((v["cpu"] for v in info.values() if "cpu" in v), "unknown")
    reference = (f"{next(iter(models))} {args.backends.split(',')[0]} {threads[0]}t", True)
    rows = []
    for (w, boxed), got in answers.items():
        ms = [a["ms"] for a in got]
        if w.startswith("MediaPipe"):
            pred = np.stack([blazepose_to_lsp(a["landmarks"]) for a in got])
            joints = list(LIMB_JOINTS)
            stages = {"decode": stats([a["decode_ms"] for a in got])["median"]}
        else:
            pred = np.array([a["keypoints"] for a in got])
            joints = list(range(gt.shape[1]))
            stages = {k: stats([a["stages"][k] for a in got])["median"] for k in STAGES}
        found = np.isfinite(pred).all(-1)
        err = joint_errors(np.where(found[..., None], pred, 0.0), gt, visible, norm)
        err = np.where(found | np.isnan(err), err, np.inf)[:, joints]
        count = np.isfinite(err).sum(0) + np.isinf(err).sum(0)
        pck = float(np.nanmean(np.where(count > 0, 100.0 * (err <= 0.2).sum(0) / np.maximum(count, 1), np.nan)))
        def ratio(other: str) -> float | None:
            """Median over photos of this setting's time / ``other``'s on the same photo (same input)."""
            if (other, boxed) not in answers:
                return None
            return float(np.median(np.array(ms) / np.array([a["ms"] for a in answers[(other, boxed)]])))

        rows.append({"setting": w, "box": boxed, "ms": stats(ms), "stages_median_ms": stages, "pck": pck,
                     "pck_joints": len(joints), "ratio_to_reference": ratio(reference[0]),
                     "ratio_to_mediapipe": ratio("MediaPipe 1t"), "missed": int((~found.all(1)).sum())})

    def fmt(v: float | None, spec: str = ".1f") -> str:
        return "-" if v is None else format(v, spec)

    kilobytes = np.median([r.image.stat().st_size for r in people]) / 1e3
    print(f"\n{len(people)} LSPET {args.split} photos (median {kilobytes:.0f} kB JPEG), the file on disk to keypoints, "
          f"one photo at a time, settings alternated photo by photo; CPU {capability} ({os.cpu_count()} cores), "
          f"load average {min(load):.2f}-{max(load):.2f}; weights "
          f"{', '.join(f'{m}: {Path(w).name}' for m, w in models.items())}, torch {torch.__version__}\n")
    print(f"{'setting':<20} {'input':<6} {'median ms':>9} {'p90 ms':>7}  " + " ".join(f"{s:>8}" for s in STAGES)
          + f"  {'/ ' + reference[0]:>10} {'/ MediaPipe':>11} {'PCK':>5}")
    for r in rows:
        st = r["stages_median_ms"]
        print(f"{r['setting']:<20} {'box' if r['box'] else 'photo':<6} {r['ms']['median']:>9.1f} "
              f"{r['ms']['p90']:>7.1f}  " + " ".join(f"{fmt(st.get(s)):>8}" for s in STAGES)
              + f"  {fmt(r['ratio_to_reference'], '.2f'):>10} {fmt(r['ratio_to_mediapipe'], '.2f'):>11} "
              f"{r['pck']:>5.1f}")
    print(f"\nstage columns: medians (ms) per photo; the ratio columns: medians of the per-photo ratios to the same "
          f"photo's time in that setting (same input); PCK@0.2 over 14 joints (MediaPipe: its 12 limb joints, a "
          f"photo where it finds nobody counts as wrong)")
    atomic_write_json(args.out, {
        "split": args.split, "photos": len(people), "warmup": args.warmup,
        "weights": {m: Path(w).name for m, w in models.items()},
        "cpu": capability, "cores": os.cpu_count(), "load_average": load, "workers": info,
        "reference": list(reference), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
