"""Find the person in an image when no box is given.

Candidates come from the learned person finder (``method="finder"``, the default where the package ships one:
:class:`~posedistill.inference.finder.Finder`, its best boxes widened by ``finder_scale``), from the pose network's
own coarse passes on the whole image and a grid of windows at two scales (``"pose"``), from OpenCV's built-in HOG
people detector plus the whole image (``"hog"``; no downloaded weights), or from the last two (``"both"``). Every
candidate crop goes through the network in one batch and is scored, and the best ``top_k`` are refined
``refine_steps`` (2) times: the next box is the bounding box of the candidate's ``keep_joints`` most confident
joints, widened by ``margin``. Each refined candidate is also tried at ``final_scales`` times its box. The person
returned is the candidate with the highest score: the prediction of a
:class:`~posedistill.inference.person_score.PersonScorer` fitted for the weights (stored beside them; it predicts
from the crop's heatmaps and pose the fraction of its joints that are right), else mean joint confidence times the
IoU of the candidate's box with the box its own joints span (a real person is a fixed point of the refinement).
With ``max_people > 1`` further people are distinct refined candidates (box IoU <= ``nms_iou`` with every one
kept) whose score is at least ``min_relative_score`` x the best one's; the finder then proposes its
``max_people`` best peaks. The settings of each method were chosen on the validation photos and scenes
(``docs/inference.md``, "Finding the person"): the finder's search takes 5 crops for one person, the window grid
about 70.

The pose of the last refinement pass was computed on exactly the crop that the network takes for the returned
box, so :meth:`Localizer.locate` returns it without another forward pass. The search never flips (flip test would
double its cost); :class:`~posedistill.inference.predictor.Predictor` re-estimates the chosen people with flip when
asked to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
import cv2
import numpy as np

from ..errors import ConfigError, DataError
from ..data.records import box_iou, box_to_square
from .finder import Finder
from .network import PoseNetwork
from .person_score import PersonScorer, candidate_features, scorer_for
from .result import PoseResult

__all__ = ["METHODS", "Localizer", "Candidate", "joints_box", "box_iou", "hog_available", "hog_boxes",
           "window_boxes"]

METHODS = ("finder", "pose", "hog", "both")


@dataclass
class Candidate:
    """The localiser's working unit (not a result): a box ``[x, y, w, h]`` tried in the search and the pose the
    network estimated in it (image pixels), with what ranks it."""

    box: list[float]
    keypoints: np.ndarray  # (K, 2)
    scores: np.ndarray  # (K,)
    stability: float = 1.0  # IoU of this box with the box its own joints span (1: a fixed point)
    quality: float | None = None  # the person scorer's predicted fraction of correct joints, when there is one

    @property
    def confidence(self) -> float:
        return float(np.mean(self.scores))

    @property
    def score(self) -> float:
        """Ranking score: the person scorer's predicted fraction of correct joints where there is a scorer, else
        mean joint confidence times stability (a real person is a fixed point of refinement)."""
        return self.quality if self.quality is not None else self.confidence * self.stability


def joints_box(keypoints: np.ndarray, scores: np.ndarray, *, keep: int | None, margin: float) -> list[float]:
    """Box ``[x, y, w, h]`` around the ``keep`` most confident joints (None: all), widened by ``margin`` about its
    centre."""
    order = np.argsort(-np.asarray(scores))[:None if keep is None else max(2, keep)]
    pts = np.asarray(keypoints, np.float64)[order]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, size = (lo + hi) / 2.0, np.maximum(hi - lo, 1.0) * margin
    return [float(centre[0] - size[0] / 2), float(centre[1] - size[1] / 2), float(size[0]), float(size[1])]


def _scaled(box: Sequence[float], factor: float) -> list[float]:
    """``box`` scaled by ``factor`` about its centre."""
    x, y, w, h = box
    return [x + w * (1 - factor) / 2, y + h * (1 - factor) / 2, w * factor, h * factor]


def window_boxes(width: int, height: int, fractions: Sequence[float] = (0.6, 0.4)) -> list[list[float]]:
    """The whole image plus square windows of side ``f * max(width, height)`` overlapping by half, per fraction."""
    boxes = [[0.0, 0.0, float(width), float(height)]]
    longest = max(width, height)
    for f in fractions:
        side = f * longest
        xs = _positions(width, side)
        ys = _positions(height, side)
        boxes += [[float(x), float(y), side, side] for y in ys for x in xs]
    return boxes


def _positions(length: float, side: float) -> np.ndarray:
    if side >= length:
        return np.array([(length - side) / 2.0])
    n = int(math.ceil((length - side) / (side / 2.0))) + 1
    return np.linspace(0.0, length - side, n)


_HOG = None


def hog_available() -> bool:
    """Whether this OpenCV build has the HOG people detector (OpenCV 4.x; OpenCV 5 moved it to contrib)."""
    return hasattr(cv2, "HOGDescriptor")



def hog_boxes(image: np.ndarray, *, max_side: int = 480, limit: int = 8) -> list[list[float]]:
    """People boxes ``[x, y, w, h]`` (best first, at most ``limit``) by OpenCV's default HOG people detector,
    run on the image downscaled to ``max_side`` (a person must be at least about 1/4 of that tall)."""
    global _HOG
    if not hog_available():
        raise ConfigError(f"OpenCV {cv2.__version__} has no HOG people detector (OpenCV 5 moved it out of the main "
                          "package); use the localisation method 'pose'")
    if _HOG is None:
        _HOG = cv2.HOGDescriptor()
        _HOG.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    if min(small.shape[:2]) < 128:
        return []
    rects, weights = _HOG.detectMultiScale(small, winStride=(8, 8), padding=(16, 16), scale=1.08)
    if len(rects) == 0:
        return []
    order = np.argsort(-np.asarray(weights).reshape(-1))[:limit]
    return [[float(v) / scale for v in rects[i]] for i in order]


@dataclass
class Localizer:
    """Locates people for a :class:`~posedistill.inference.network.PoseNetwork` (see the module docstring for the
    rule).

    Args:
        network: the pose network used for the coarse passes and the refinement.
        method: ``"finder"`` (the person finder's best boxes), ``"pose"`` (the whole image and a window grid,
            ranked by the network), ``"hog"`` (OpenCV's HOG detections plus the whole image), ``"both"``;
            ``"auto"``: finder where one is shipped (a dozen times faster than the grid for about the same
            accuracy), else pose.
        finder: the :class:`~posedistill.inference.finder.Finder` of ``method="finder"`` (``"auto"``: the shipped
            one, run with the network's threads).
        finder_scale: the finder's boxes are widened by this factor about their centre before the first crop.
        refine_steps: refinement passes per kept candidate.
        top_k: candidates refined per image (None: ``max_people`` with the finder, 12 with a person scorer, 3
            without).
        keep_joints: the most confident joints that span the refined box (None: all with the finder, 10 else).
        margin: widening of the joints' box (the crop adds the model's box padding on top; None: 1.0 with the
            finder, 1.2 else).
        window_fractions: window sides of the grid, as fractions of the image's longer side.
        max_people: people returned per image at most.
        min_relative_score: further people need this fraction of the best person's score.
        nms_iou: further people must overlap every kept one by at most this IoU.
        batch_size: crops per forward pass.
        final_scales: after the refinement, each kept candidate is also tried with its box scaled by these
            factors about its centre (1.0: as refined), and the best of all is returned; None: (0.9, 1.0, 1.1)
            with the finder, (0.7, 0.85, 1.0) with a scorer (the grid's refined boxes run about 1.1-1.2x the
            ground truth's), (1.0,) without.
        scorer: a :class:`~posedistill.inference.person_score.PersonScorer` that ranks the candidates (``"auto"``:
            the one stored beside the network's weights, if any; None: rank by confidence and stability).
    """

    network: PoseNetwork
    method: str = "auto"
    finder: Finder | str | None = "auto"
    finder_scale: float = 1.4
    refine_steps: int = 2
    top_k: int | None = None  # None: max_people with the finder, 12 with a person scorer, 3 without
    keep_joints: int | None = None
    margin: float | None = None
    window_fractions: tuple[float, ...] = (0.6, 0.4)
    max_people: int = 1
    min_relative_score: float = 0.6
    nms_iou: float = 0.3
    batch_size: int = 64
    stability_power: float = 1.0
    final_scales: tuple[float, ...] | None = None  # None: see the docstring
    scorer: PersonScorer | str | None = "auto"
    stats: dict[str, int] = field(default_factory=lambda: {"forward_crops": 0})

    def __post_init__(self) -> None:
        num_joints = self.network.meta.num_joints
        if isinstance(self.scorer, str):
            if self.scorer != "auto":
                raise ConfigError(f"scorer must be a PersonScorer, None or 'auto', got {self.scorer!r}")
            weights = self.network.weights
            self.scorer = None if weights is None else scorer_for(weights, num_joints)
        elif self.scorer is not None:
            self.scorer.check(num_joints, "localizer")
        if self.method not in (*METHODS, "auto"):
            raise ConfigError(f"localisation method must be auto or one of {', '.join(METHODS)}, "
                              f"got {self.method!r}")
        if isinstance(self.finder, str):
            if self.finder != "auto":
                raise ConfigError(f"finder must be a Finder, None or 'auto', got {self.finder!r}")
            self.finder = (Finder.shipped(threads=self.network.threads) if self.method in ("auto", "finder")
                           else None)
        if self.method == "auto":
            self.method = "pose" if self.finder is None else "finder"
        if self.method == "finder" and self.finder is None:
            raise ConfigError("localisation method 'finder' needs a person finder, and none is shipped; use 'pose'")
        finding = self.method == "finder"
        if self.top_k is None:
            self.top_k = self.max_people if finding else 3 if self.scorer is None else 12
        if self.keep_joints is None:
            self.keep_joints = num_joints if finding else 10
        if self.margin is None:
            self.margin = 1.0 if finding else 1.2
        if self.final_scales is None:
            # chosen on the validation photos and scenes: the grid's with its scorer on 150 scenes (41.5, against
            # 40.0 for (1.0,) and 40.7 for (0.8, 1.0, 1.25)); the finder's on 500 of each (+1.1 / +1.0 over (1.0,))
            self.final_scales = ((0.9, 1.0, 1.1) if finding else (1.0,) if self.scorer is None
                                 else (0.7, 0.85, 1.0))
        if self.finder_scale <= 0:
            raise ConfigError(f"finder_scale must be > 0, got {self.finder_scale}")
        if any(f <= 0 for f in self.final_scales):
            raise ConfigError(f"final_scales must be > 0, got {self.final_scales}")
        if self.refine_steps < 0 or self.top_k < 1 or self.max_people < 1 or self.margin <= 0:
            raise ConfigError("refine_steps >= 0, top_k >= 1, max_people >= 1 and margin > 0 are required")
        if self.method in ("hog", "both") and not hog_available():
            raise ConfigError(f"OpenCV {cv2.__version__} has no HOG people detector (OpenCV 5 moved it out of "
                              "the main package); use the localisation method 'pose' or OpenCV 4")

    # -- candidates
    def candidates(self, image: np.ndarray) -> list[list[float]]:
        """Boxes to try first for one BGR image."""
        return self.candidates_many([image])[0]

    def candidates_many(self, images: Sequence[np.ndarray]) -> list[list[list[float]]]:
        """Boxes to try first for each BGR image (the finder runs on all of them in one batch)."""
        if self.method == "finder":
            found = self.finder.find_many(images, top_k=self.max_people)
            return [[_scaled(box, self.finder_scale) for _, box in people] for people in found]
        return [self._search_boxes(image) for image in images]

    def _search_boxes(self, image: np.ndarray) -> list[list[float]]:
        h, w = image.shape[:2]
        boxes = window_boxes(w, h, self.window_fractions) if self.method in ("pose", "both") else \
            [[0.0, 0.0, float(w), float(h)]]
        return boxes + (hog_boxes(image) if self.method in ("hog", "both") else [])

    def poses(self, jobs: Sequence[tuple[np.ndarray, list[float]]],
              features: list[np.ndarray] | None = None) -> list[Candidate]:
        """Pose in each (image, box) crop, in batches of ``batch_size`` (never flipped); with a ``features`` list,
        the :func:`~posedistill.inference.person_score.candidate_features` of every crop are appended to it."""
        found: list[Candidate] = []
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start:start + self.batch_size]
            crops, mats = zip(*(self.network.preprocess(img, box) for img, box in chunk))
            heatmaps = self.network.heatmaps(np.stack(crops))
            pts, scores = self.network.decode_heatmaps(heatmaps, np.stack(mats))
            boxes = [box for _, box in chunk]
            quality: Sequence[float | None] = [None] * len(chunk)
            if self.scorer is not None or features is not None:
                feats = candidate_features(heatmaps, pts, scores, boxes, padding=self.network.meta.box_padding)
                if features is not None:
                    features.append(feats)
                if self.scorer is not None:
                    quality = [float(q) for q in self.scorer.score(feats)]
            found += [Candidate(list(box), p, s, quality=q) for box, p, s, q in zip(boxes, pts, scores, quality)]
        self.stats["forward_crops"] += len(jobs)
        return found

    # -- public
    def locate_many(self, images: Sequence[np.ndarray]) -> list[PoseResult]:
        """People in each BGR image, best first (at least one per image: the best candidate), with their ranking
        scores as ``person_scores``."""
        for i, image in enumerate(images):
            if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
                raise DataError(f"image {i}: expected an H x W x 3 BGR image")
        jobs = [(i, box) for i, boxes in enumerate(self.candidates_many(images)) for box in boxes]
        first = self.poses([(images[i], box) for i, box in jobs])
        kept: list[list[Candidate]] = [[] for _ in images]
        for (i, _), candidate in zip(jobs, first):
            kept[i].append(candidate)
        kept = [sorted(c, key=lambda p: -p.score)[:self.top_k] for c in kept]
        for _ in range(self.refine_steps):
            flat = [(i, p) for i, found in enumerate(kept) for p in found]
            boxes = [self.next_box(images[i], p) for i, p in flat]
            refined = self.poses([(images[i], b) for (i, _), b in zip(flat, boxes)])
            kept = [[] for _ in images]
            for (i, _), candidate in zip(flat, refined):
                kept[i].append(candidate)
        variants = [(i, _scaled(p.box, f)) for i, found in enumerate(kept) for p in found
                    for f in self.final_scales if f != 1.0]
        for (i, _), candidate in zip(variants, self.poses([(images[i], b) for i, b in variants])):
            kept[i].append(candidate)
        for found in kept:
            self._set_stability(found)
        return [self.result(self._select(found)) for found in kept]

    def locate(self, image: np.ndarray) -> PoseResult:
        """People in one BGR image, best first (:meth:`locate_many`)."""
        return self.locate_many([image])[0]

    def score_boxes(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> PoseResult:
        """The pose in each box of ``image``, with the ranking score :meth:`locate` gives its candidates."""
        return self.result(self._set_stability(self.poses([(image, list(box)) for box in boxes])))

    def result(self, candidates: Sequence[Candidate]) -> PoseResult:
        """Candidates as a :class:`~posedistill.inference.result.PoseResult` (their scores as ``person_scores``)."""
        if not candidates:
            return PoseResult.empty(self.network.joints)
        return PoseResult(np.array([c.box for c in candidates]), np.stack([c.keypoints for c in candidates]),
                          np.stack([c.scores for c in candidates]), self.network.joints,
                          person_scores=np.array([c.score for c in candidates]))

    # -- helpers
    def _set_stability(self, candidates: list[Candidate]) -> list[Candidate]:
        for p in candidates:
            p.stability = box_iou(p.box, joints_box(p.keypoints, p.scores, keep=self.keep_joints,
                                                    margin=self.margin)) ** self.stability_power
        return candidates

    def next_box(self, image: np.ndarray, candidate: Candidate) -> list[float]:
        """The box of the candidate's most confident joints (its previous box when they lie far outside)."""
        box = joints_box(candidate.keypoints, candidate.scores, keep=self.keep_joints, margin=self.margin)
        h, w = image.shape[:2]
        centre, side = box_to_square(box, self.network.meta.box_padding)
        if not (-side / 2 < centre[0] < w + side / 2 and -side / 2 < centre[1] < h + side / 2):
            return candidate.box  # joints far outside the image: keep the previous box
        return box

    def _select(self, candidates: list[Candidate]) -> list[Candidate]:
        candidates = sorted(candidates, key=lambda p: -p.score)
        chosen = candidates[:1]
        for p in candidates[1:]:
            if len(chosen) >= self.max_people:
                break
            if p.score >= self.min_relative_score * chosen[0].score and all(
                    box_iou(p.box, q.box) <= self.nms_iou for q in chosen):
                chosen.append(p)
        return chosen
