"""Request batching for the server: one worker thread runs the network on several requests at once.

Requests wait in a bounded queue (``queue_size``); a full queue refuses new ones at once (:class:`ServerBusy`,
HTTP 503) instead of letting latency and memory grow. The worker takes the first waiting request, then gathers
more for at most ``max_wait_ms`` (or until ``max_batch``), and estimates their people through
:meth:`Predictor.estimate <posedistill.inference.predictor.Predictor.estimate>`: requests with a box in one forward
pass, the others localised together; requests that ask for different flip test or box refinement settings run as
separate such batches, one after the other. Errors are per request: a request that cannot be
prepared fails alone, and a batch that fails is run again one request at a time, so that only the request that
broke it fails.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ..inference.predictor import Predictor, Prepared
from ..inference.refine import check_refine
from ..inference.result import PoseResult
from ..inference.sources import check_box
from ..inference.timing import Clock, StageTimes

__all__ = ["Batcher", "ServerBusy", "Result"]


class ServerBusy(Exception):
    """The request queue is full."""


@dataclass
class Result:
    """The people of one request and how its batch went."""

    people: PoseResult
    model_ms: float  # wall time of Predictor.estimate for the requests of its settings in the batch
    batch: int  # requests run together with it (the same flip and refine settings)
    wait_ms: float  # from its submission to the start of its batch (the queue and the batch's gathering)
    stages_ms: dict[str, float]  # the batch's stage times: locate, crop, infer, decode_heatmaps (ms)


@dataclass
class _Job:
    image: np.ndarray
    box: list[float] | None
    name: str
    flip: bool
    refine: bool | str
    future: Future = field(default_factory=Future)
    submitted: float = field(default_factory=time.perf_counter)


class Batcher:
    """Runs :meth:`Predictor.estimate <posedistill.inference.predictor.Predictor.estimate>` on batches of queued
    requests in a worker thread; the requests of a batch with different flip or refine settings run apart."""

    def __init__(self, predictor: Predictor, *, max_batch: int = 8, max_wait_ms: float = 5.0,
                 queue_size: int = 32) -> None:
        self.predictor = predictor
        self.max_batch, self.max_wait = max(1, max_batch), max(0.0, max_wait_ms) / 1e3
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max(1, queue_size))
        self.served = 0
        self.batches = 0
        self.thread = threading.Thread(target=self._run, name="posedistill-batcher", daemon=True)
        self.thread.start()

    def submit(self, image: np.ndarray, box: list[float] | None, name: str = "upload", *,
               flip: bool | None = None, refine: bool | str | None = None) -> Future:
        """Queue one image (BGR) and optional box; ``flip``, ``refine``: flip test and the box's re-crop for this
        request (None: the predictor's settings). The future gives a :class:`Result`. Raises ServerBusy.

        A box outside the image raises :class:`~posedistill.errors.DataError` here, before queueing.
        """
        if box is not None:
            h, w = image.shape[:2]
            box = check_box(box, w, h, name)
        job = _Job(image, box, name, self.predictor.flip if flip is None else bool(flip),
                   self.predictor.refine if refine is None else check_refine(refine))
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise ServerBusy(f"server busy: {self.jobs.maxsize} requests already queued; retry shortly") from None
        return job.future

    def queued(self) -> int:
        return self.jobs.qsize()

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=30)

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        batch, deadline, stop = [first], time.perf_counter() + self.max_wait, False
        while len(batch) < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                job = self.jobs.get(timeout=left) if left > 0 else self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stop = True
                break
            batch.append(job)
        return batch, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self.jobs.get()
            if first is None:
                break
            batch, stop = self._gather(first)
            settings = list(dict.fromkeys((job.flip, job.refine) for job in batch))  # in order of arrival
            for flip, refine in settings:
                self._serve([job for job in batch if (job.flip, job.refine) == (flip, refine)], flip, refine)

    def _serve(self, batch: list[_Job], flip: bool, refine: bool | str) -> None:
        """Run one batch of requests with the same flip and refine settings; every job's future gets its result or
        its own error. Its stage times (the crops of given boxes here, the rest in :meth:`Predictor.estimate`) go
        to every request's :class:`Result`."""
        begun = time.perf_counter()
        times = StageTimes()
        clock = Clock(times)
        prepared: list[Prepared] = []
        jobs: list[_Job] = []
        for job in batch:
            try:
                with clock("crop"):
                    prepared.append(self.predictor.prepare(job.image, None if job.box is None else [job.box],
                                                           where=job.name))
            except Exception as exc:  # noqa: BLE001 - this request fails alone
                job.future.set_exception(exc)
                continue
            jobs.append(job)
        if not jobs:
            return
        try:
            start = time.perf_counter()
            found = self.predictor.estimate(prepared, flip=flip, refine=refine, clock=clock)
            ms = (time.perf_counter() - start) * 1e3
        except Exception as exc:  # noqa: BLE001 - retried one by one: only the request that broke it fails
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
            else:
                for job in jobs:
                    self._serve([job], flip, refine)
            return
        self.batches += 1
        stages = {k: 1e3 * getattr(times, k) for k in ("locate", "crop", "infer", "decode_heatmaps")}
        for job, people in zip(jobs, found):
            self.served += 1
            job.future.set_result(Result(people, ms, len(jobs), 1e3 * (begun - job.submitted), stages))
