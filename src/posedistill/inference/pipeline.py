"""``predict`` over files, folders and videos as a small pipeline of threads.

Decoding an image (JPEG) and cropping it cost about as much as the student's forward pass at 64x64, so they
overlap with inference: a pool of ``workers`` threads decodes and crops the next images (a reader thread decodes
the next frames of a video) while the calling thread runs the network, and a writer thread draws and encodes
the drawings. OpenCV and PyTorch release the GIL in their kernels, so threads run them in parallel. Queues are
bounded (``2 * batch_size`` items), so memory does not grow with the input.

The person in each image: the given box (``bbox`` / ``bbox_file``), else the :class:`~posedistill.inference.localize.Localizer`
when one is given, else the whole image. In a video without a given box, a :class:`~posedistill.inference.tracking.PoseTracker`
follows the person (box from the previous frame's joints, One Euro smoothing; both switchable).

``timings`` (a :class:`StageTimes`) collects the seconds each stage spent; the stages overlap, so their sum can
exceed the wall time.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from ..data.images import load_image
from ..errors import ConfigError, DataError
from .drawing import draw_pose
from .predictor import Predictor
from .sources import Box, check_box, collect_inputs, iter_frames, load_bbox_file
from .sources import Source as _Source
from .sources import boxes_for as _boxes_for
from .sources import check_sources as _check_sources
from .sources import open_video as _video
from ..io import atomic_write_json
from .localize import Localizer
from .tracking import PoseTracker, TrackingConfig


def _draw_name(src: _Source, used: set[str]) -> str:
    """A file name for the drawing of ``src`` that no earlier drawing of this run used."""
    name = src.path.name if src.kind == "image" else src.path.stem + ".mp4"
    stem, suffix = os.path.splitext(name)
    candidate, i = name, 1
    while candidate in used:
        candidate, i = f"{stem}_{i}{suffix}", i + 1
    used.add(candidate)
    return candidate

__all__ = ["StageTimes", "predict_paths", "predict_crops_timed", "estimate_people", "Item", "SCHEDULES",
           "resolve_schedule"]


@dataclass
class StageTimes:
    """Seconds spent per stage (summed over threads) and items done."""

    decode: float = 0.0
    crop: float = 0.0
    locate: float = 0.0
    infer: float = 0.0
    decode_heatmaps: float = 0.0
    write: float = 0.0
    images: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            setattr(self, stage, getattr(self, stage) + seconds)

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


class _Clock:
    """``with clock("crop"): ...`` adds the block's wall time to that stage (no-op without StageTimes)."""

    def __init__(self, times: StageTimes | None) -> None:
        self.times = times

    def __call__(self, stage: str) -> "_Timed":
        return _Timed(self.times, stage)


class _Timed:
    def __init__(self, times: StageTimes | None, stage: str) -> None:
        self.times, self.stage = times, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        if self.times is not None:
            self.times.add(self.stage, time.perf_counter() - self.start)


def predict_crops_timed(predictor: Predictor, crops: np.ndarray, matrices: np.ndarray, clock: _Clock
                        ) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`Predictor.predict_crops` with the network and the heatmap decoding timed apart."""
    with clock("infer"):
        heatmaps = predictor.heatmaps(crops)
    with clock("decode_heatmaps"):
        return predictor.decode_heatmaps(heatmaps, matrices)


def estimate_people(predictor: Predictor, localizer: Localizer | None, items: Sequence[Item],
                    clock: _Clock | None = None) -> list[list[tuple[list[float], np.ndarray, np.ndarray]]]:
    """People (box, keypoints, scores) of each item: items with boxes (and their crops) in one forward pass,
    items without (``boxes is None``) localised together by ``localizer``."""
    clock = clock or _Clock(None)
    people: list[list[tuple[list[float], np.ndarray, np.ndarray]]] = [[] for _ in items]
    cropped = [i for i, it in enumerate(items) if it.boxes is not None and it.crops]
    if cropped:
        crops = np.stack([c for i in cropped for c in items[i].crops])
        mats = np.stack([m for i in cropped for m in items[i].matrices])
        pts, scores = predict_crops_timed(predictor, crops, mats, clock)
        k = 0
        for i in cropped:
            for b in items[i].boxes:
                people[i].append((b, pts[k], scores[k]))
                k += 1
    lost = [i for i, it in enumerate(items) if it.boxes is None]
    if lost:
        if localizer is None:
            raise ConfigError("an image without a box needs a Localizer")
        with clock("locate"):
            found = localizer.locate_many([items[i].frame for i in lost])
        for i, persons in zip(lost, found):
            people[i] = [(q.box, q.keypoints, q.scores) for q in persons]
    return people


class _Writer:
    """A thread that runs drawing/encoding jobs in order; the first failure is raised by :meth:`close`."""

    def __init__(self, clock: _Clock, maxsize: int) -> None:
        self.clock = clock
        self.jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="posedistill-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            if self.error is None:
                try:
                    with self.clock("write"):
                        job()
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread by close()
                    self.error = exc

    def put(self, job: Callable[[], None]) -> None:
        if self.error is not None:
            raise self.error
        self.jobs.put(job)

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


@dataclass
class Item:
    """One image or frame on its way through the pipeline."""

    src: _Source | None  # None: an image that did not come from a file (e.g. an upload)
    index: int = 0  # frame index (0 for an image)
    frame: np.ndarray | None = None
    boxes: list[list[float]] | None = None  # None: localise
    crops: list[np.ndarray] = field(default_factory=list)
    matrices: list[np.ndarray] = field(default_factory=list)
    problem: str | None = None


class _Run:
    """State of one predict_paths call."""

    def __init__(self, predictor: Predictor, *, batch_size: int, workers: int, localizer: Localizer | None,
                 tracking: TrackingConfig | None, staging: Path | None, progress: bool, total: int,
                 skipped: list[str], times: StageTimes | None, phased: bool = False) -> None:
        self.p, self.batch_size, self.workers, self.phased = predictor, batch_size, workers, phased
        self.localizer, self.tracking, self.staging = localizer, tracking, staging
        self.skipped, self.times, self.clock = skipped, times, _Clock(times)
        self.bar = tqdm(total=total, desc="predict", unit="img", disable=not progress, leave=False)
        self.writer = _Writer(self.clock, maxsize=2 * batch_size)
        self.records: list[dict[str, Any]] = []
        self.used_names: set[str] = set()

    # -- per item
    def skip(self, message: str) -> None:
        tqdm.write(f"warning: {message}; skipped", file=sys.stderr)
        self.bar.update()
        self.skipped.append(message)

    def prepare(self, item: Item, fixed: list[list[float]] | None, loader: Callable[[], np.ndarray] | None) -> Item:
        """Decode (images) and crop; runs in a worker thread. Problems are stored, not raised."""
        where = f"{item.src.path}" + (f" frame {item.index}" if item.src.kind == "video" else "")
        try:
            if loader is not None:
                with self.clock("decode"):
                    item.frame = loader()
            frame = item.frame
            if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
                raise DataError(f"{where}: not an H x W x 3 image")
            h, w = frame.shape[:2]
            if fixed is None and self.localizer is None:
                fixed = [[0.0, 0.0, float(w), float(h)]]
            if fixed is not None:
                item.boxes = [check_box(b, w, h, where) for b in fixed]
                with self.clock("crop"):
                    for b in item.boxes:
                        crop, matrix = self.p.preprocess(frame, b)
                        item.crops.append(crop)
                        item.matrices.append(matrix)
        except DataError as exc:
            item.problem = str(exc)
        return item

    def infer(self, items: Sequence[Item]) -> list[list[tuple[list[float], np.ndarray, np.ndarray]]]:
        """People (box, keypoints, scores) of each prepared item: cropped ones in one batch, others localised."""
        return estimate_people(self.p, self.localizer, items, self.clock)

    def emit(self, item: Item, people: Sequence[tuple[list[float], np.ndarray, np.ndarray]],
             draw: Callable[[np.ndarray], None] | None) -> None:
        video = item.src.kind == "video"
        for box, pts, scores in people:
            self.records.append({"image": str(item.src.path), **({"frame": item.index} if video else {}),
                                 **self.p.record(box, pts, scores)})
        if self.times is not None:
            self.times.images += 1
        if draw is not None:
            frame, joints = item.frame, self.p.joints

            def job() -> None:
                out = frame
                for box, pts, scores in people:
                    out = draw_pose(out, pts, scores, joints, bbox=box)
                draw(out)

            self.writer.put(job)
        self.bar.update()

    # -- per source
    def run_images(self, sources: Sequence[_Source], boxes_for: Callable[[_Source], list[list[float]] | None]) -> None:
        """Decode and crop in the worker pool, infer in this thread. ``overlap``: the next images decode while a
        batch runs. ``phased``: a window of images is decoded and cropped by all workers, then run by the
        network with no decoding beside it, then the next window (no competition for the cores)."""
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="posedistill-decode")
        try:
            pending: deque[Future[Item]] = deque()
            it = iter(sources)
            window = max((4 if self.phased else 2) * self.batch_size, self.workers)

            def submit() -> bool:
                src = next(it, None)
                if src is None:
                    return False
                pending.append(pool.submit(self.prepare, Item(src, 0), boxes_for(src),
                                           lambda s=src: load_image(s.path)))
                return True

            def fill() -> None:
                while len(pending) < window and submit():
                    pass
                if self.phased:  # the whole window decoded before the network runs
                    for future in pending:
                        future.result()

            fill()
            batch: list[Item] = []
            while pending:
                item = pending.popleft().result()
                if not self.phased:
                    submit()
                if item.problem is not None:
                    if not item.src.in_folder:
                        raise DataError(item.problem)
                    self.skip(item.problem)
                else:
                    batch.append(item)
                if batch and (sum(len(b.crops) or 1 for b in batch) >= self.batch_size
                              or (self.phased and not pending)):
                    self._flush_images(batch)
                    batch = []
                if self.phased and not pending:
                    fill()
            if batch:
                self._flush_images(batch)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _flush_images(self, batch: list[Item]) -> None:
        for item, people in zip(batch, self.infer(batch)):
            draw = None
            if self.staging is not None:
                path = self.staging / _draw_name(item.src, self.used_names)
                draw = lambda img, path=path: _write_image(path, img)  # noqa: E731
            self.emit(item, people, draw)

    def run_video(self, src: _Source, fixed: list[list[float]] | None) -> None:
        with _video(src.path) as (_, _, fps, _):
            pass
        video_writer: list[cv2.VideoWriter] = []
        draw_path = self.staging / _draw_name(src, self.used_names) if self.staging is not None else None

        def draw(img: np.ndarray) -> None:
            if not video_writer:
                h, w = img.shape[:2]
                vw = cv2.VideoWriter(str(draw_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                if not vw.isOpened():
                    raise DataError(f"{draw_path}: cannot write annotated video")
                video_writer.append(vw)
            video_writer[0].write(img)

        tracker = None
        if fixed is None and self.localizer is not None:
            tracker = PoseTracker(self.p, self.tracking or TrackingConfig(), localizer=self.localizer)
        elif fixed is not None and self.tracking is not None and self.tracking.smooth and len(fixed) == 1:
            tracker = PoseTracker(self.p, TrackingConfig(**{**asdict(self.tracking), "track": False}), box=fixed[0])
        try:
            batch: list[Item] = []
            for item in self._frames(src, fixed, crop=tracker is None):
                if item.problem is not None:
                    self.skip(item.problem)
                    continue
                if tracker is not None:
                    with self.clock("locate" if tracker.box is None else "infer"):
                        person = tracker.update(item.frame, item.index / fps)
                    self.emit(item, [(person.box, person.keypoints, person.scores)], draw if draw_path else None)
                    continue
                batch.append(item)
                if sum(len(b.crops) for b in batch) >= self.batch_size:
                    self._flush_frames(batch, draw if draw_path else None)
                    batch = []
            self._flush_frames(batch, draw if draw_path else None)
        finally:
            if video_writer:
                self.writer.put(video_writer[0].release)

    def _flush_frames(self, batch: list[Item], draw: Callable[[np.ndarray], None] | None) -> None:
        if batch:
            for item, people in zip(batch, self.infer(batch)):
                self.emit(item, people, draw)

    def _frames(self, src: _Source, fixed: list[list[float]] | None, *, crop: bool) -> Iterator[Item]:
        """Frames decoded (and, with ``crop``, cropped at the ``fixed`` boxes) by a reader thread, in order."""
        out: queue.Queue[Item | BaseException | None] = queue.Queue(maxsize=2 * self.batch_size)
        stop = threading.Event()

        def read() -> None:
            try:
                frames, index = iter_frames(src.path), 0
                while not stop.is_set():
                    with self.clock("decode"):
                        frame = next(frames, None)
                    if frame is None:
                        break
                    item = Item(src, index, frame=frame)
                    index += 1
                    if crop:
                        self.prepare(item, fixed, None)
                    out.put(item)
                out.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
                out.put(exc)

        reader = threading.Thread(target=read, name="posedistill-video", daemon=True)
        reader.start()
        try:
            while (got := out.get()) is not None:
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            stop.set()
            while reader.is_alive():  # unblock a reader waiting on a full queue
                try:
                    out.get_nowait()
                except queue.Empty:
                    reader.join(0.01)


def _write_image(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise DataError(f"{path}: cannot encode drawn image")
    path.write_bytes(buf.tobytes())


SCHEDULES = ("auto", "overlap", "phased")


def resolve_schedule(schedule: str, workers: int, *, quantized: bool = False) -> str:
    """``overlap`` or ``phased`` for a ``predict_paths`` schedule. ``auto``: overlap for an int8 model (``quantized``);
    otherwise phased when this machine has fewer than 2 x ``workers`` cores, where the decode workers would take
    cores from the network's threads, else overlap. Measured on 2 cores with 2 workers (end-to-end / model-only,
    phased against overlap, six runs in docs/inference.md): eager PyTorch and ORT fp32 were faster phased in 7 of
    11 measurements, ORT int8 faster with overlap in 5 of 6 (0.73-0.80 against 0.65-0.84)."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if schedule != "auto":
        return schedule
    if quantized:
        return "overlap"
    return "phased" if (os.cpu_count() or 1) < 2 * workers else "overlap"


def predict_paths(
    predictor: Predictor,
    inputs: Sequence[str | os.PathLike],
    *,
    bbox: Box | None = None,
    bbox_file: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    draw_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    progress: bool = True,
    skipped: list[str] | None = None,
    localizer: Localizer | None = None,
    tracking: TrackingConfig | None = None,
    workers: int = 2,
    timings: StageTimes | None = None,
    schedule: str = "auto",
) -> list[dict[str, Any]]:
    """Run ``predictor`` over image files, folders and videos, in batches of ``batch_size`` crops.

    Returns one record per image (or video frame) and person: ``{"image": path as given, ["frame": i,]
    "bbox", "keypoints"}``. Without a box for an image, the ``localizer`` finds the person (the whole image
    without one); in a video, ``tracking`` (default: track and smooth) follows them. An image named explicitly
    that cannot be read fails the whole call before any work (one-line :class:`DataError`); a bad image inside a
    folder, or a bad frame of a video, is reported on stderr (``warning: ...``), skipped, and its message appended
    to ``skipped`` when a list is given. ``schedule`` (image files): ``overlap`` decodes the next images while
    the network runs; ``phased`` decodes a window of images with all workers, then runs the network on it alone
    (faster where both would share few cores); ``auto``: overlap for an int8 model, else phased when the machine
    has fewer than 2 x ``workers`` cores (:func:`resolve_schedule`). ``output`` (JSON) and the drawings in
    ``draw_dir`` are written only when the run finishes: drawings are staged in a hidden folder and moved into
    place at the end; the JSON is written atomically.
    """
    if batch_size < 1 or workers < 1:
        raise ConfigError(f"batch size and workers must be >= 1, got {batch_size}, {workers}")
    if bbox is not None and bbox_file is not None:
        raise ConfigError("give either --bbox or --bbox-file, not both")
    phased = resolve_schedule(schedule, workers, quantized=getattr(predictor, "quantized", False)) == "phased"
    sources = collect_inputs(inputs)
    boxes = load_bbox_file(bbox_file) if bbox_file is not None else None
    total = _check_sources(sources)
    skipped = skipped if skipped is not None else []
    staging: Path | None = None
    if draw_dir is not None:
        Path(draw_dir).mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".posedistill-draw-", dir=draw_dir))
    run = _Run(predictor, batch_size=batch_size, workers=workers, localizer=localizer, tracking=tracking,
               staging=staging, progress=progress, total=total, skipped=skipped, times=timings,
               phased=phased)
    try:
        try:
            i = 0
            while i < len(sources):  # consecutive images go through the pool together; videos one by one
                if sources[i].kind == "video":
                    run.run_video(sources[i], _boxes_for(sources[i], boxes, bbox))
                    i += 1
                    continue
                j = i
                while j < len(sources) and sources[j].kind == "image":
                    j += 1
                run.run_images(sources[i:j], lambda s: _boxes_for(s, boxes, bbox))
                i = j
        finally:
            run.writer.close()
            run.bar.close()
        records = run.records
        if not records and skipped:
            raise DataError(f"no image or frame could be processed ({len(skipped)} skipped; first: {skipped[0]})")
        if output is not None:
            atomic_write_json(output, records)
        if staging is not None:
            for f in sorted(staging.iterdir()):
                os.replace(f, Path(draw_dir) / f.name)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return records
