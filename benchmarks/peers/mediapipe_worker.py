#!/usr/bin/env python
"""MediaPipe Pose worker for ``mediapipe_lspet.py``, run by an interpreter that has ``mediapipe`` (see README.md).

It never imports posedistill (MediaPipe 0.10.21 needs numpy < 2, the project numpy 2) and downloads nothing: the
legacy ``mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)`` graph runs the two models that ship
inside the mediapipe wheel (``pose_detection.tflite``, then ``pose_landmark_full.tflite``), the detector on every
image. Input JSON (file ``argv[1]``)::

    {"warmup": 3, "settings": {"box": [{"image": PATH, "square": [cx, cy, side]}, ...],
                               "photo": [{"image": PATH}, ...]}}

``square`` crops the image to that square (padded with black where it leaves the image) and MediaPipe sees only
the crop; without it, it sees the whole photo. Output JSON (file ``argv[2]``): per setting, per job
``{"landmarks": [[x, y, visibility], ...33] in original image pixels (pixel centres at integers) or null when
MediaPipe found no person, "ms": milliseconds}``, timed from the BGR image in memory to landmarks in image pixels
(crop, colour conversion, both networks), after ``warmup`` untimed images; plus the process's CPU time over wall
time while timing (about 1.0: one core) and its thread count.

``--lines`` (used by ``benchmarks/photo_latency.py``, which alternates settings photo by photo): one job a line
on stdin, ``{"image": PATH, "square": [cx, cy, side] or null}``, one answer a line on stdout, ``{"landmarks":
..., "ms": ..., "decode_ms": ...}``, timed from the file on disk (decoding included) to landmarks in image pixels;
the first line written is ``{"ready": true, "mediapipe": VERSION}``.
"""

from __future__ import annotations

import json
import os
import sys
import time

import cv2
import numpy as np


def square_crop(image: np.ndarray, cx: float, cy: float, side: float) -> tuple[np.ndarray, int, int]:
    """The square ``side`` x ``side`` region centred on (cx, cy) (pixel centres at integers), black outside the
    image, and the image coordinates of its top-left pixel."""
    n = max(1, int(round(side)))
    x0, y0 = int(round(cx - (n - 1) / 2)), int(round(cy - (n - 1) / 2))
    h, w = image.shape[:2]
    crop = np.zeros((n, n, 3), image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + n, w), min(y0 + n, h)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return crop, x0, y0


def run_one(pose, image: np.ndarray, square) -> list[list[float]] | None:
    if square is not None:
        image, x0, y0 = square_crop(image, *square)
    else:
        x0 = y0 = 0
    h, w = image.shape[:2]
    result = pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if not result.pose_landmarks:
        return None
    # MediaPipe's normalised coordinates put the image's left edge at 0 and right edge at 1 (pixel centres at
    # i + 0.5); the project's pixel centres are at integers
    return [[lm.x * w - 0.5 + x0, lm.y * h - 0.5 + y0, lm.visibility] for lm in result.pose_landmarks.landmark]


def threads() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return int(next(line for line in f if line.startswith("Threads:")).split()[1])
    except (OSError, StopIteration, ValueError):
        return -1


def serve_lines() -> None:
    """The ``--lines`` protocol (module docstring): one photo per line, decoded and estimated in turn."""
    import mediapipe as mp

    print(json.dumps({"ready": True, "mediapipe": mp.__version__}), flush=True)
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        for line in sys.stdin:
            if not line.strip():
                continue
            job = json.loads(line)
            start = time.perf_counter()
            image = cv2.imread(job["image"], cv2.IMREAD_COLOR)
            decoded = time.perf_counter()
            landmarks = run_one(pose, image, job.get("square"))
            done = time.perf_counter()
            print(json.dumps({"landmarks": landmarks, "ms": 1e3 * (done - start),
                              "decode_ms": 1e3 * (decoded - start)}), flush=True)


def main() -> None:
    if sys.argv[1:] == ["--lines"]:
        serve_lines()
        return
    job = json.loads(open(sys.argv[1], encoding="utf-8").read())
    import mediapipe as mp

    out: dict = {"mediapipe": mp.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
                 "python": sys.version.split()[0], "model": "pose_landmark_full.tflite (model_complexity=1) after "
                 "pose_detection.tflite, legacy solutions API, static_image_mode=True", "settings": {}}
    for name, items in job["settings"].items():
        images = [cv2.imread(it["image"], cv2.IMREAD_COLOR) for it in items]
        with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
            for it, image in list(zip(items, images))[:job.get("warmup", 3)]:
                run_one(pose, image, it.get("square"))
            rows = []
            wall = cpu = 0.0
            for it, image in zip(items, images):
                t, c = time.perf_counter(), time.process_time()
                lms = run_one(pose, image, it.get("square"))
                dt = time.perf_counter() - t
                wall += dt
                cpu += time.process_time() - c
                rows.append({"landmarks": lms, "ms": 1e3 * dt})
            out["settings"][name] = {"rows": rows, "cpu_over_wall": cpu / wall if wall > 0 else None,
                                     "threads": threads()}
        print(f"mediapipe {name}: {len(rows)} images, {sum(r['landmarks'] is None for r in rows)} without a person",
              file=sys.stderr, flush=True)
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f)
    os.replace(tmp, sys.argv[2])


if __name__ == "__main__":
    main()
