"""Stage times of inference: :class:`StageTimes` collects the seconds each stage spent (summed over threads), and a
:class:`Clock` times a block into it (without StageTimes it times nothing). ``predict``'s pipeline, the server's
batcher and :meth:`posedistill.inference.predictor.Predictor.estimate` time their stages through them."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["StageTimes", "Clock"]


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

    def __init__(self, times: StageTimes | None = None) -> None:
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
