"""The people of a batch of images: crops at given boxes through the network in one forward pass, the images
without a box handed to the localiser together.

``predict`` (:mod:`posedistill.inference.pipeline`) and the server's request batcher
(:mod:`posedistill.serve.batcher`) both estimate through :func:`estimate_people`. :class:`StageTimes` collects the
seconds each stage spent (a :class:`Clock` times a block into it; without StageTimes it times nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .localize import Localizer
from .predictor import Predictor
from .sources import Source

__all__ = ["StageTimes", "Clock", "Item", "predict_crops_timed", "estimate_people"]


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


class Clock:
    """``with clock("crop"): ...`` adds the block's wall time to that stage (no-op without StageTimes)."""

    def __init__(self, times: StageTimes | None) -> None:
        self.times = times

    def __call__(self, stage: str) -> _Timed:
        return _Timed(self.times, stage)


class _Timed:
    def __init__(self, times: StageTimes | None, stage: str) -> None:
        self.times, self.stage = times, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        if self.times is not None:
            self.times.add(self.stage, time.perf_counter() - self.start)


@dataclass
class Item:
    """One image or frame on its way through the pipeline."""

    src: Source | None  # None: an image that did not come from a file (e.g. an upload)
    index: int = 0  # frame index (0 for an image)
    frame: np.ndarray | None = None
    boxes: list[list[float]] | None = None  # None: localise
    crops: list[np.ndarray] = field(default_factory=list)
    matrices: list[np.ndarray] = field(default_factory=list)
    problem: str | None = None


def predict_crops_timed(predictor: Predictor, crops: np.ndarray, matrices: np.ndarray, clock: Clock
                        ) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`Predictor.predict_crops` with the network and the heatmap decoding timed apart."""
    with clock("infer"):
        heatmaps = predictor.heatmaps(crops)
    with clock("decode_heatmaps"):
        return predictor.decode_heatmaps(heatmaps, matrices)


def estimate_people(predictor: Predictor, localizer: Localizer | None, items: Sequence[Item],
                    clock: Clock | None = None) -> list[list[tuple[list[float], np.ndarray, np.ndarray]]]:
    """People (box, keypoints, scores) of each item: items with boxes (and their crops) in one forward pass,
    items without (``boxes is None``) localised together by ``localizer``."""
    clock = clock or Clock(None)
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
