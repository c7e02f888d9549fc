"""The one result type of inference: :class:`PoseResult`, the people of one image.

:class:`~posedistill.inference.predictor.Predictor` returns it, and ``predict`` (its JSON records and drawings), the
server, the video tracker and the localiser all hand it on; :meth:`PoseResult.to_records` makes the JSON records
of ``posedistill predict`` and of the server's ``POST /predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..skeleton import JointSet
from .drawing import draw_pose

__all__ = ["PoseResult"]


@dataclass
class PoseResult:
    """The people found in one image, in that image's pixels.

    Attributes:
        boxes: (N, 4) person boxes ``[x, y, w, h]`` (given, or found by the localiser).
        keypoints: (N, K, 2) joint positions ``x, y``.
        scores: (N, K) joint confidences (the heatmap peaks).
        joints: the joint set (names, limbs, sides) of the model that made them.
        person_scores: (N,) the localiser's ranking score of each person, when they were found by it (the person
            scorer's expected fraction of right joints, or confidence x stability without one); None for given
            boxes.
        recropped: (N,) for given boxes, whether the pose comes from a second crop on the box of the person's own
            joints (``Predictor(refine=...)``; the box stays the given one); None for people the localiser found.
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    joints: JointSet
    person_scores: np.ndarray | None = None
    recropped: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = self.joints.num_joints
        self.boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)
        self.keypoints = np.asarray(self.keypoints).reshape(-1, k, 2)
        self.scores = np.asarray(self.scores).reshape(-1, k)
        n = len(self.boxes)
        if len(self.keypoints) != n or len(self.scores) != n:
            raise ValueError(f"PoseResult: {n} boxes, {len(self.keypoints)} poses and {len(self.scores)} score rows")
        if self.person_scores is not None:
            self.person_scores = np.asarray(self.person_scores, np.float64).reshape(n)
        if self.recropped is not None:
            self.recropped = np.asarray(self.recropped, bool).reshape(n)

    @classmethod
    def empty(cls, joints: JointSet) -> PoseResult:
        """No people."""
        k = joints.num_joints
        return cls(np.zeros((0, 4)), np.zeros((0, k, 2)), np.zeros((0, k)), joints)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(self.joints.names)

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int | slice) -> PoseResult:
        """The people at ``index`` (an int gives a result of one person)."""
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(f"person {index} of {len(self)}")
            index = slice(index % len(self), index % len(self) + 1)
        return PoseResult(self.boxes[index], self.keypoints[index], self.scores[index], self.joints,
                          None if self.person_scores is None else self.person_scores[index],
                          None if self.recropped is None else self.recropped[index])

    def to_records(self, **extra: Any) -> list[dict[str, Any]]:
        """One JSON-ready record per person: ``{**extra, "bbox": [x, y, w, h], "keypoints": [{"name", "x", "y",
        "score"}]}`` (``extra``: e.g. ``image=...``, ``frame=...``), as ``posedistill predict`` writes them."""
        return [{**extra, "bbox": [float(v) for v in box],
                 "keypoints": [{"name": n, "x": float(p[0]), "y": float(p[1]), "score": float(s)}
                               for n, p, s in zip(self.joints.names, pts, scores)]}
                for box, pts, scores in zip(self.boxes, self.keypoints, self.scores)]

    def draw(self, image: np.ndarray, *, min_score: float = 0.0) -> np.ndarray:
        """A copy of the BGR ``image`` with every person's skeleton and box drawn
        (:func:`posedistill.inference.drawing.draw_pose`)."""
        out = image
        for box, pts, scores in zip(self.boxes, self.keypoints, self.scores):
            out = draw_pose(out, pts, scores, self.joints, bbox=box, min_score=min_score)
        return out.copy() if out is image else out
