"""Follow one person through a video: the next frame's box from this frame's joints, and smoothed keypoints.

* Tracking (``track=True``): the box of frame t+1 is the box spanned by frame t's most confident joints (as in
  :func:`posedistill.inference.localize.joints_box`); the person is localised afresh (the
  :class:`~posedistill.inference.predictor.Predictor`'s localiser) on the first frame and whenever the mean joint
  confidence falls below ``relocalize_below``. Every ``recheck_every`` tracked frames the localiser also looks at the whole
  frame, and the track moves to the person it finds when that person lies elsewhere (box IoU < 0.3) and scores more
  than ``recheck_margin`` above the tracked crop by the localiser's own score: a first localisation that locked onto
  the wrong thing is not followed to the end of the video.
* Smoothing (``smooth=True``): every keypoint coordinate goes through a One Euro filter (Casiez, Roussel, Vogel,
  CHI 2012): a low-pass filter whose cutoff rises with the speed, ``cutoff = min_cutoff + beta * speed``, so a
  still joint is steadied and a fast one is not delayed. Speeds are measured in person heights per second (the
  box's longer side), so the parameters do not depend on the image size. The box for the next frame is taken
  from the raw joints, so smoothing adds no lag to the tracking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .localize import box_iou, joints_box
from .predictor import Predictor
from .result import PoseResult

__all__ = ["OneEuroFilter", "TrackingConfig", "PoseTracker"]


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFilter:
    """One Euro filter over an array of values (e.g. (K, 2) keypoints), one independent filter per value.

    Args:
        min_cutoff: cutoff frequency (Hz) at rest; lower = smoother and slower.
        beta: how fast the cutoff rises with speed (per unit of ``scale`` per second); higher = less lag.
        d_cutoff: cutoff (Hz) of the low-pass filter on the speed itself.
    """

    min_cutoff: float = 1.0
    beta: float = 1.0
    d_cutoff: float = 1.0
    _x: np.ndarray | None = field(default=None, init=False, repr=False)
    _dx: np.ndarray | None = field(default=None, init=False, repr=False)
    _t: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.beta < 0 or self.d_cutoff <= 0:
            raise ConfigError(f"One Euro filter needs min_cutoff > 0, beta >= 0, d_cutoff > 0; got "
                              f"{self.min_cutoff}, {self.beta}, {self.d_cutoff}")

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float, *, scale: float = 1.0) -> np.ndarray:
        """Filtered ``x`` at time ``t`` (seconds); ``scale`` divides the speed (e.g. the person's size in px)."""
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        speed = np.abs(self._dx) / max(scale, 1e-9)
        a = _alpha(self.min_cutoff + self.beta * speed, dt)
        self._x = self._x + a * (x - self._x)
        self._t = t
        return self._x.copy()


@dataclass
class TrackingConfig:
    """Switches and parameters of :class:`PoseTracker` (``predict --no-track``, ``--no-smooth``, ...)."""

    track: bool = True
    smooth: bool = True
    # chosen on the validation clips of benchmarks/video_tracking.py --tune: the least jitter while tracking that
    # costs at most 1 point of PCK (docs/inference.md)
    min_cutoff: float = 8.0
    beta: float = 8.0
    d_cutoff: float = 1.0
    relocalize_below: float = 0.25  # mean joint confidence under which the person is localised afresh
    # the next frame's box: the extent of the keep_joints most confident joints (None: all) widened by margin;
    # chosen on the validation clips with the finder search (docs/inference.md)
    keep_joints: int | None = None
    margin: float = 1.1
    recheck_every: int = 0  # tracked frames between looks at the whole frame (0: never)
    recheck_margin: float = 0.0  # how much better the person found elsewhere must score to take the track

    def __post_init__(self) -> None:
        OneEuroFilter(self.min_cutoff, self.beta, self.d_cutoff)  # validates the filter parameters
        if self.margin <= 0 or (self.keep_joints is not None and self.keep_joints < 2):
            raise ConfigError(f"tracking needs margin > 0 and keep_joints >= 2, got {self.margin}, "
                              f"{self.keep_joints}")
        if self.recheck_every < 0:
            raise ConfigError(f"recheck_every must be >= 0 (0: never), got {self.recheck_every}")


@dataclass
class PoseTracker:
    """One person through consecutive frames of one video (make a new tracker per video).

    ``update(frame, t)`` returns that frame's person as a one-person
    :class:`~posedistill.inference.result.PoseResult`: its box, the keypoints (smoothed when ``config.smooth``) and
    the raw joint scores. Every pose comes from ``predictor`` (with its flip setting; its ``refine`` setting for a
    fixed ``box``, never for the tracker's own boxes). ``box`` fixes the box of every frame (no tracking, no
    localisation); otherwise the person is found by the predictor's localiser.
    """

    predictor: Predictor
    config: TrackingConfig = field(default_factory=TrackingConfig)
    box: list[float] | None = None
    relocalized: int = field(default=0, init=False)
    switched: int = field(default=0, init=False)  # re-checks that moved the track to another person
    _last: PoseResult | None = field(default=None, init=False, repr=False)
    _tracked_frames: int = field(default=0, init=False, repr=False)
    _filter: OneEuroFilter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        c = self.config
        self._filter = OneEuroFilter(c.min_cutoff, c.beta, c.d_cutoff)
        if self.box is None and self.predictor.localizer is None:
            raise ConfigError("tracking a person without a box needs a Predictor that localises (its locate is "
                              "'none')")

    def _at(self, frame: np.ndarray, box: list[float]) -> PoseResult:
        """The pose in a box of the tracker's own (from the last joints: it may reach far out of the frame; not
        refined again, it is already the joints' box)."""
        return self.predictor.estimate([self.predictor.prepare(frame, [box], check=False)], refine=False)[0]

    def _locate(self, frame: np.ndarray) -> PoseResult:
        self.relocalized += 1
        self._tracked_frames = 0
        return self.predictor(frame)[0]

    def _raw(self, frame: np.ndarray) -> PoseResult:
        if self.box is not None:
            return self.predictor(frame, [self.box])
        c, last = self.config, self._last
        if c.track and last is not None and float(np.mean(last.scores)) >= c.relocalize_below:
            box = joints_box(last.keypoints[0], last.scores[0], keep=c.keep_joints, margin=c.margin)
            self._tracked_frames += 1
            if c.recheck_every and self._tracked_frames % c.recheck_every == 0:
                return self._recheck(frame, box)
            person = self._at(frame, box)
            if float(np.mean(person.scores)) >= c.relocalize_below:
                return person
        return self._locate(frame)

    def _recheck(self, frame: np.ndarray, box: list[float]) -> PoseResult:
        """The tracked crop, or the person the localiser finds elsewhere in ``frame`` if it scores better (by the
        localiser's own ranking score)."""
        assert self.predictor.localizer is not None
        tracked = self.predictor.localizer.score_boxes(frame, [box])
        if float(np.mean(tracked.scores)) < self.config.relocalize_below:  # lost anyway: as without the re-check
            return self._locate(frame)
        found = self.predictor(frame)[0]
        assert tracked.person_scores is not None and found.person_scores is not None
        if (box_iou(found.boxes[0], tracked.boxes[0]) < 0.3
                and found.person_scores[0] > tracked.person_scores[0] + self.config.recheck_margin):
            self.switched += 1
            self._filter.reset()  # a jump to another place, not a motion to smooth
            return found
        return self._at(frame, box) if self.predictor.flip else tracked

    def update(self, frame: np.ndarray, t: float) -> PoseResult:
        """The person in ``frame`` at time ``t`` (seconds, increasing)."""
        person = self._raw(frame)
        self._last = person
        if not self.config.smooth:
            return person
        side = max(person.boxes[0][2], person.boxes[0][3])
        smooth = self._filter(person.keypoints[0], t, scale=side)
        return PoseResult(person.boxes, smooth[None], person.scores, person.joints, person.person_scores)

    def reset(self) -> None:
        self._last = None
        self._tracked_frames = 0
        self._filter.reset()
