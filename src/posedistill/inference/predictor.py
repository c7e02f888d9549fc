"""The user-facing pose estimator: :class:`Predictor`, photo (and optional boxes) -> :class:`PoseResult`.

It owns a :class:`~posedistill.inference.network.PoseNetwork` (the weights, the crop, the heatmaps and their
decoding) and, unless ``locate="none"``, a :class:`~posedistill.inference.localize.Localizer` that finds the people
of an image given without boxes (``"none"``: the whole image is the box). ``predict``, ``serve`` and the video
tracker all estimate through :meth:`Predictor.estimate`: the given boxes of a batch of images in one forward
pass, the images without boxes localised together. With ``flip`` every pose is the average of the crop's and its
mirror image's heatmaps; the localiser's search is never flipped (that would double its cost), the people it
chooses are estimated once more with flip. With ``refine`` a given box whose person's predicted joints disagree
with it (``"auto"``), or every given box (True), is cropped once more on the box of those joints and the second
pose kept (:mod:`posedistill.inference.refine`); the localiser refines its own boxes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.records import whole_image_box
from ..errors import ConfigError, DataError
from ..models.meta import ModelMeta
from ..skeleton import JointSet
from .localize import Localizer
from .network import PoseNetwork
from .refine import BoxRefinement, check_refine
from .result import PoseResult
from .sources import Box, check_box
from .timing import Clock

__all__ = ["Predictor", "Prepared", "LOCATE", "COLORS"]

LOCATE = ("auto", "finder", "pose", "hog", "both", "none")
COLORS = ("bgr", "rgb")


def _check_locate(locate: str) -> None:
    if locate not in LOCATE:
        raise ConfigError(f"locate must be one of {', '.join(LOCATE)}, got {locate!r}")


@dataclass
class Prepared:
    """One image on its way through :meth:`Predictor.estimate`: its BGR pixels and either its person boxes with
    their crops and image->crop matrices, or ``boxes=None`` (to be localised). ``given``: the boxes came from the
    caller (False: the whole image's box of a predictor that does not localise, which is never refined). Made by
    :meth:`Predictor.prepare`, which may run in another thread than the network."""

    image: np.ndarray
    boxes: list[list[float]] | None
    crops: list[np.ndarray] = field(default_factory=list)
    matrices: list[np.ndarray] = field(default_factory=list)
    given: bool = True


class Predictor:
    """Single-person pose estimation on photos, with or without person boxes.

    Example::

        import cv2, posedistill
        people = posedistill.Predictor()(cv2.imread("photo.jpg"))         # finds the person, like the CLI
        people.keypoints[0], people.scores[0], people.to_records()
        people = posedistill.Predictor("student.onnx", flip=True)(rgb, [[x, y, w, h]], color="rgb")

    Args:
        weights: checkpoint (``.pt``) or ONNX file; None: the shipped student named ``model``
            (:func:`~posedistill.models.pretrained.default_weights` of ``weights_dir``).
        model: a shipped student's name (``"tiny"``, ``"base"``; None: the manifest's default); only without
            ``weights``.
        backend: ``"torch"`` or ``"onnx"`` (default: from the file suffix, ``.onnx`` -> onnx).
        locate: how people are found in an image given without boxes: ``"auto"`` (the shipped person finder, else
            the window search) / ``"finder"`` / ``"pose"`` / ``"hog"`` / ``"both"``
            (:class:`~posedistill.inference.localize.Localizer`), or ``"none"`` (the whole image).
        people: the most people returned per localised image.
        flip: flip test (the mean of the crop's and its mirror's heatmaps): more accurate, twice the network time.
        refine: what to do with a given box after the first pass: ``"auto"`` crops again on the box of the
            person's predicted joints when that box disagrees with the given one (the IoU of their squares below
            ``refinement.min_iou``), True always, False never; the second pose is kept.
        refinement: the rule of that second crop (:class:`~posedistill.inference.refine.BoxRefinement`).
        threads: intra-op threads (None: library default).
        dark: DARK sub-pixel decoding (True) or the quarter-pixel shift (False); None: the model meta's choice.
        joint_set: expected joint set; weights for another set raise :class:`CheckpointError`.
        weights_dir: where the default weights are looked up when ``weights`` is None (default: the package's).
        device: where a checkpoint's network runs (``"cpu"``, ``"cuda"``).
    """

    def __init__(self, weights: str | os.PathLike | None = None, *, model: str | None = None,
                 backend: str | None = None, locate: str = "auto", people: int = 1, flip: bool = False,
                 refine: bool | str = "auto", refinement: BoxRefinement = BoxRefinement(), threads: int | None = None,
                 dark: bool | None = None, joint_set: str | None = None, weights_dir: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu") -> None:
        _check_locate(locate)  # before the weights are loaded
        check_refine(refine)
        network = PoseNetwork.load(weights, model=model, backend=backend, threads=threads, dark=dark,
                                   joint_set=joint_set, weights_dir=weights_dir, device=device)
        self._setup(network, locate=locate, people=people, flip=flip, refine=refine, refinement=refinement)

    @classmethod
    def from_network(cls, network: PoseNetwork, *, locate: str = "auto", people: int = 1, flip: bool = False,
                     refine: bool | str = "auto", refinement: BoxRefinement = BoxRefinement()) -> Predictor:
        """A predictor around a network that is already built (e.g. one shared by several predictors)."""
        _check_locate(locate)
        predictor = cls.__new__(cls)
        predictor._setup(network, locate=locate, people=people, flip=flip, refine=refine, refinement=refinement)
        return predictor

    def _setup(self, network: PoseNetwork, *, locate: str, people: int, flip: bool, refine: bool | str,
               refinement: BoxRefinement) -> None:
        self.network = network
        self.flip = bool(flip)
        self.refine = check_refine(refine)
        self.refinement = refinement
        self.localizer: Localizer | None = (None if locate == "none" else
                                            Localizer(network, method=locate, max_people=people))

    @property
    def meta(self) -> ModelMeta:
        return self.network.meta

    @property
    def joints(self) -> JointSet:
        return self.network.joints

    def __repr__(self) -> str:
        locate = "none" if self.localizer is None else self.localizer.method
        return f"Predictor({self.network!r}, locate={locate!r}, flip={self.flip}, refine={self.refine!r})"

    def __call__(self, image: np.ndarray, boxes: Sequence[Box] | None = None, *, color: str = "bgr",
                 flip: bool | None = None, refine: bool | str | None = None) -> PoseResult:
        """The people of one H x W x 3 uint8 ``image`` whose channels are in ``color`` order (``"bgr"`` as
        ``cv2.imread`` gives, or ``"rgb"``): one per box of ``boxes`` ([x, y, w, h] in image pixels), or, without
        boxes, the people the localiser finds (the whole image with ``locate="none"``). ``flip``, ``refine``: this
        call's flip test and re-crop of the given boxes (None: the predictor's)."""
        return self.estimate([self.prepare(image, boxes, color=color)], flip=flip, refine=refine)[0]

    def warm_up(self) -> None:
        """One call with a box and, when localising, one without, on a blank image: the runtimes' first-call
        set-up (ONNX Runtime's and PyTorch's allocations, the person finder's session) is done before real
        photos arrive."""
        blank = np.full((240, 180, 3), 127, np.uint8)
        self(blank, [[40.0, 40.0, 100.0, 160.0]], refine=False)
        if self.localizer is not None:
            self(blank)

    def prepare(self, image: np.ndarray, boxes: Sequence[Box] | None = None, *, color: str = "bgr",
                where: str = "image", check: bool = True) -> Prepared:
        """The image checked (one-line :class:`DataError` naming ``where``), in BGR order, with the crops of its
        boxes (the whole image's box without boxes when the predictor does not localise). Boxes are checked
        against the image (:func:`~posedistill.inference.sources.check_box`) unless ``check`` is False: boxes the
        caller made itself from joints (the video tracker's), which may reach further out of the image than a
        given box may."""
        if color not in COLORS:
            raise ConfigError(f"color must be 'bgr' or 'rgb', got {color!r}")
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
            raise DataError(f"{where}: not an H x W x 3 image")
        if color == "rgb":
            image = np.ascontiguousarray(image[:, :, ::-1])
        h, w = image.shape[:2]
        given = boxes is not None
        if boxes is None and self.localizer is None:
            boxes = [whole_image_box(w, h)]
        if boxes is None:
            return Prepared(image, None)
        prepared = Prepared(image, [check_box(b, w, h, where) if check else [float(v) for v in b] for b in boxes],
                            given=given)
        for box in prepared.boxes:
            crop, matrix = self.network.preprocess(image, box)
            prepared.crops.append(crop)
            prepared.matrices.append(matrix)
        return prepared

    def estimate(self, batch: Sequence[Prepared], *, flip: bool | None = None, refine: bool | str | None = None,
                 clock: Clock | None = None) -> list[PoseResult]:
        """The people of each prepared image: the crops of the given boxes in one forward pass (and the people
        ``refine`` picks cropped again on their joints, in a second one), the images without boxes localised
        together (and their chosen people estimated again with flip, when flipping). ``flip``, ``refine``: None
        is the predictor's setting. ``clock`` times the stages ``crop`` (of re-cropped and re-estimated people),
        ``infer``, ``decode_heatmaps`` and ``locate``."""
        flip = self.flip if flip is None else flip
        refine = self.refine if refine is None else check_refine(refine)
        clock = clock or Clock()
        results: list[PoseResult | None] = [None] * len(batch)
        boxed = [i for i, p in enumerate(batch) if p.boxes is not None]
        owner = [i for i in boxed for _ in batch[i].boxes]
        boxes = np.array([b for i in boxed for b in batch[i].boxes], np.float64).reshape(-1, 4)
        pts, scores = self._run([c for i in boxed for c in batch[i].crops],
                                [m for i in boxed for m in batch[i].matrices], flip=flip, clock=clock)
        given = np.array([batch[i].given for i in owner], bool)  # the whole image's box stays as it is
        again = self.refinement.needed(boxes, pts, refine) & given
        if again.any():
            chosen = np.flatnonzero(again)
            pts[chosen], scores[chosen] = self._run_boxes(
                [(batch[owner[j]].image, box) for j, box in zip(chosen, self.refinement.crop_box(pts[chosen]))],
                flip=flip, clock=clock)
        k = 0
        for i in boxed:
            n = len(batch[i].boxes)
            results[i] = PoseResult(boxes[k:k + n], pts[k:k + n], scores[k:k + n], self.joints,
                                    recropped=again[k:k + n])
            k += n
        lost = [i for i, p in enumerate(batch) if p.boxes is None]
        if lost:
            if self.localizer is None:
                raise ConfigError("an image without a box needs a Predictor that localises (locate is 'none')")
            with clock("locate"):
                found = self.localizer.locate_many([batch[i].image for i in lost])
            if flip:
                found = self._flipped([batch[i].image for i in lost], found, clock)
            for i, people in zip(lost, found):
                results[i] = people
        return results  # type: ignore[return-value]

    def _run(self, crops: list[np.ndarray], matrices: list[np.ndarray], *, flip: bool,
             clock: Clock) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints and scores of crops (none: empty arrays), the network and the decoding timed apart."""
        if not crops:
            k = self.joints.num_joints
            return np.zeros((0, k, 2)), np.zeros((0, k))
        with clock("infer"):
            heatmaps = self.network.heatmaps(np.stack(crops), flip=flip)
        with clock("decode_heatmaps"):
            return self.network.decode_heatmaps(heatmaps, np.stack(matrices))

    def _run_boxes(self, jobs: Sequence[tuple[np.ndarray, Sequence[float]]], *, flip: bool,
                   clock: Clock) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_run` on the crops of (image, box) pairs, the cropping timed as ``crop``."""
        with clock("crop"):
            crops = [self.network.preprocess(image, box) for image, box in jobs]
        return self._run([c for c, _ in crops], [m for _, m in crops], flip=flip, clock=clock)

    def _flipped(self, images: Sequence[np.ndarray], found: Sequence[PoseResult],
                 clock: Clock) -> list[PoseResult]:
        """The localised people estimated again, with flip, in the crops of their boxes (ranking scores kept)."""
        pts, scores = self._run_boxes([(image, box) for image, people in zip(images, found) for box in people.boxes],
                                      flip=True, clock=clock)
        out, k = [], 0
        for people in found:
            n = len(people)
            out.append(PoseResult(people.boxes, pts[k:k + n], scores[k:k + n], self.joints, people.person_scores))
            k += n
        return out
