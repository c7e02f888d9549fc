"""Request batching for the server: one worker thread runs the network on several requests at once.

Requests wait in a bounded queue (``queue_size``); a full queue refuses new ones at once (:class:`ServerBusy`,
HTTP 503) instead of letting latency and memory grow. The worker takes the first waiting request, then gathers
more for at most ``max_wait_ms`` (or until ``max_batch``), and estimates all their people together: requests
with a box in one forward pass, the others localised together. Errors are per request: a request that cannot be
prepared fails alone, and a batch that fails is run again one request at a time, so that only the request that
broke it fails.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..inference.predictor import Predictor
from ..inference.sources import check_box
from ..inference.localize import Localizer
from ..inference.estimate import Item, estimate_people

__all__ = ["Batcher", "ServerBusy", "Result"]


class ServerBusy(Exception):
    """The request queue is full."""


@dataclass
class Result:
    """Records of one request and how its batch went."""

    records: list[dict[str, Any]]
    model_ms: float  # wall time of the network (and localisation) for the whole batch
    batch: int  # requests in that batch


@dataclass
class _Job:
    image: np.ndarray
    box: list[float] | None
    name: str
    future: Future = field(default_factory=Future)


class Batcher:
    """Runs :func:`posedistill.inference.estimate.estimate_people` on batches of queued requests in a worker thread."""

    def __init__(self, predictor: Predictor, localizer: Localizer | None, *, max_batch: int = 8,
                 max_wait_ms: float = 5.0, queue_size: int = 32) -> None:
        self.predictor, self.localizer = predictor, localizer
        self.max_batch, self.max_wait = max(1, max_batch), max(0.0, max_wait_ms) / 1e3
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max(1, queue_size))
        self.served = 0
        self.batches = 0
        self.thread = threading.Thread(target=self._run, name="posedistill-batcher", daemon=True)
        self.thread.start()

    def submit(self, image: np.ndarray, box: list[float] | None, name: str = "upload") -> Future:
        """Queue one image (BGR) and optional box; the future gives a :class:`Result`. Raises ServerBusy.

        A box outside the image raises :class:`~posedistill.errors.DataError` here, before queueing.
        """
        if box is not None:
            h, w = image.shape[:2]
            box = check_box(box, w, h, name)
        job = _Job(image, box, name)
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
            self._serve(batch)

    def _serve(self, batch: list[_Job]) -> None:
        """Run one batch; every job's future gets its result or its own error."""
        items, jobs = [], []
        for job in batch:
            try:
                item = Item(None, frame=job.image, boxes=[job.box] if job.box is not None else None)
                if job.box is not None:
                    crop, matrix = self.predictor.preprocess(job.image, job.box)
                    item.crops, item.matrices = [crop], [matrix]
            except Exception as exc:  # noqa: BLE001 - this request fails alone
                job.future.set_exception(exc)
                continue
            items.append(item)
            jobs.append(job)
        if not jobs:
            return
        try:
            start = time.perf_counter()
            people = estimate_people(self.predictor, self.localizer, items)
            ms = (time.perf_counter() - start) * 1e3
        except Exception as exc:  # noqa: BLE001 - retried one by one: only the request that broke it fails
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
            else:
                for job in jobs:
                    self._serve([job])
            return
        self.batches += 1
        for job, found in zip(jobs, people):
            self.served += 1
            records = [{"image": job.name, **self.predictor.record(b, p, s)} for b, p, s in found]
            job.future.set_result(Result(records, ms, len(jobs)))
