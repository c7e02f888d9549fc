"""``predict`` over files, folders and videos as a small pipeline of threads.

Decoding an image (JPEG) and cropping it cost about as much as the student's forward pass at 64x64, so they
overlap with inference: a pool of ``workers`` threads decodes and crops the next images (a reader thread decodes
the next frames of a video) while the calling thread runs the network, and a writer thread draws and encodes
the drawings. OpenCV and PyTorch release the GIL in their kernels, so threads run them in parallel. Queues are
bounded (``2 * batch_size`` items), so memory does not grow with the input.

The person in each image: the given box (``bbox`` / ``bbox_file``), else whom the
:class:`~posedistill.inference.predictor.Predictor` finds (its localiser; the whole image with ``locate="none"``).
Every batch goes through :meth:`Predictor.estimate`. In a video without a given box, a
:class:`~posedistill.inference.tracking.PoseTracker` follows the person (box from the previous frame's joints, One
Euro smoothing; both switchable).

``timings`` (a :class:`~posedistill.inference.timing.StageTimes`) collects the seconds each stage spent; the
stages overlap, so their sum can exceed the wall time. Records and drawings are collected by
:class:`~posedistill.inference.outputs.Outputs` and written only when the run has succeeded.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from ..data.images import load_image
from ..errors import ConfigError, DataError
from .outputs import Outputs
from .predictor import Predictor, Prepared
from .result import PoseResult
from .sources import Box, Source, boxes_for, check_box, check_sources, collect_inputs, iter_frames, load_bbox_file
from .sources import open_video
from .timing import Clock, StageTimes
from .tracking import PoseTracker, TrackingConfig

__all__ = ["predict_paths", "SCHEDULES", "resolve_schedule", "Item"]


@dataclass
class Item:
    """One image or video frame on its way through the pipeline."""

    src: Source
    index: int = 0  # frame index (0 for an image)
    frame: np.ndarray | None = None
    prepared: Prepared | None = None  # the checked image and the crops of its boxes (or none: to be localised)
    problem: str | None = None

    @property
    def inputs(self) -> int:
        """Network inputs this item adds to a batch (a localised image counts as one)."""
        boxes = self.prepared.boxes if self.prepared is not None else None
        return len(boxes) if boxes else 1


class _Run:
    """State of one predict_paths call."""

    def __init__(self, predictor: Predictor, *, batch_size: int, workers: int, tracking: TrackingConfig | None,
                 outputs: Outputs, clock: Clock, progress: bool, total: int, skipped: list[str],
                 times: StageTimes | None, phased: bool = False) -> None:
        self.p, self.batch_size, self.workers, self.phased = predictor, batch_size, workers, phased
        self.tracking, self.out = tracking, outputs
        self.skipped, self.times, self.clock = skipped, times, clock
        self.bar = tqdm(total=total, desc="predict", unit="img", disable=not progress, leave=False)

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
            with self.clock("crop"):
                item.prepared = self.p.prepare(item.frame, fixed, where=where)
        except DataError as exc:
            item.problem = str(exc)
        except Exception as exc:  # noqa: BLE001 - whatever breaks on one file must not cost the others
            item.problem = f"{where}: {_one_line(exc)}"
        return item

    def infer(self, items: Sequence[Item]) -> list[PoseResult]:
        """The people of each prepared item (:meth:`Predictor.estimate`: cropped ones in one batch, others
        localised)."""
        return self.p.estimate([it.prepared for it in items], clock=self.clock)

    def emit(self, item: Item, people: PoseResult, draw: Callable[[np.ndarray], None] | None) -> None:
        self.out.add(item.src, item.index, item.frame, people, draw)
        if self.times is not None:
            self.times.images += 1
        self.bar.update()

    # -- per source
    def run_images(self, sources: Sequence[Source], boxes_of: Callable[[Source], list[list[float]] | None]) -> None:
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
                pending.append(pool.submit(self.prepare, Item(src, 0), boxes_of(src),
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
                if batch and (sum(b.inputs for b in batch) >= self.batch_size
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
        try:
            found = self.infer(batch)
        except Exception as exc:  # noqa: BLE001 - one item spoilt the batch: run them one by one, skip the culprit
            if len(batch) > 1:
                for item in batch:
                    self._flush_images([item])
                return
            problem = exc if isinstance(exc, DataError) else DataError(f"{batch[0].src.path}: {_one_line(exc)}")
            if not batch[0].src.in_folder:  # an image named on the command line: one line, no output
                raise problem from None
            self.skip(str(problem))
            return
        for item, people in zip(batch, found):
            self.emit(item, people, self.out.image_drawing(item.src))

    def run_video(self, src: Source, fixed: list[list[float]] | None) -> None:
        with open_video(src.path) as (_, _, fps, (width, height)):
            pass
        if fixed is not None and width > 0 and height > 0:  # the tracker takes the box as it is: check it here
            fixed = [check_box(b, width, height, str(src.path)) for b in fixed]
        draw = self.out.video_drawing(src, fps)

        tracker = None
        if fixed is None and self.p.localizer is not None:
            tracker = PoseTracker(self.p, self.tracking or TrackingConfig())
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
                    self.emit(item, person, draw)
                    continue
                batch.append(item)
                if sum(b.inputs for b in batch) >= self.batch_size:
                    self._flush_frames(batch, draw)
                    batch = []
            self._flush_frames(batch, draw)
        finally:
            if draw is not None:
                self.out.end_video(draw)

    def _flush_frames(self, batch: list[Item], draw: Callable[[np.ndarray], None] | None) -> None:
        if batch:
            for item, people in zip(batch, self.infer(batch)):
                self.emit(item, people, draw)

    def _frames(self, src: Source, fixed: list[list[float]] | None, *, crop: bool) -> Iterator[Item]:
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


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` of an unexpected exception (an OpenCV error runs to many lines)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no message'}"


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
    tracking: TrackingConfig | None = None,
    workers: int = 2,
    timings: StageTimes | None = None,
    schedule: str = "auto",
) -> list[dict[str, Any]]:
    """Run ``predictor`` over image files, folders and videos, in batches of ``batch_size`` crops.

    Returns one record per image (or video frame) and person: ``{"image": path as given, ["frame": i,]
    "bbox", "keypoints"}`` (:meth:`PoseResult.to_records`). Without a box for an image, the predictor finds the
    person (its localiser; the whole image with ``locate="none"``); in a video, ``tracking`` (default: track and
    smooth) follows them. An image named explicitly
    that cannot be read fails the whole call before any work (one-line :class:`DataError`); a bad image inside a
    folder, or a bad frame of a video, is reported on stderr (``warning: ...``), skipped, and its message appended
    to ``skipped`` when a list is given. ``schedule`` (image files): ``overlap`` decodes the next images while
    the network runs; ``phased`` decodes a window of images with all workers, then runs the network on it alone
    (faster where both would share few cores); ``auto``: overlap for an int8 model, else phased when the machine
    has fewer than 2 x ``workers`` cores (:func:`resolve_schedule`). ``output`` (JSON) and the drawings in
    ``draw_dir`` are written only when the run finishes: drawings are staged in a hidden folder and moved into
    place at the end (the folder of a run that was killed is removed by the next run into ``draw_dir``); the
    JSON is written atomically. A file of a folder that fails for any reason is skipped, so the others' results
    are written.
    """
    if batch_size < 1 or workers < 1:
        raise ConfigError(f"batch size and workers must be >= 1, got {batch_size}, {workers}")
    if bbox is not None and bbox_file is not None:
        raise ConfigError("give either --bbox or --bbox-file, not both")
    phased = resolve_schedule(schedule, workers, quantized=predictor.network.quantized) == "phased"
    sources = collect_inputs(inputs)
    boxes = load_bbox_file(bbox_file) if bbox_file is not None else None
    total = check_sources(sources)
    skipped = skipped if skipped is not None else []
    clock = Clock(timings)
    outputs = Outputs(output=output, draw_dir=draw_dir, clock=clock, maxsize=2 * batch_size)
    run = _Run(predictor, batch_size=batch_size, workers=workers, tracking=tracking, outputs=outputs, clock=clock, progress=progress, total=total, skipped=skipped, times=timings,
               phased=phased)
    try:
        try:
            i = 0
            while i < len(sources):  # consecutive images go through the pool together; videos one by one
                if sources[i].kind == "video":
                    run.run_video(sources[i], boxes_for(sources[i], boxes, bbox))
                    i += 1
                    continue
                j = i
                while j < len(sources) and sources[j].kind == "image":
                    j += 1
                run.run_images(sources[i:j], lambda s: boxes_for(s, boxes, bbox))
                i = j
        finally:
            outputs.close_writer()
            run.bar.close()
        if not outputs.records and skipped:
            raise DataError(f"no image or frame could be processed ({len(skipped)} skipped; first: {skipped[0]})")
        outputs.finish()
    finally:
        outputs.discard()
    return outputs.records
