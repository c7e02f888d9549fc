"""Fast single-person pose inference: :class:`Predictor`, input discovery, drawing and default weights.

A person is given by a box ``[x, y, w, h]`` in image pixels (default: the whole image). The network sees a
square crop centred on the box centre with side ``max(w, h) * 1.25`` (:data:`BOX_PADDING`), resized to the
model's input size with exactly the crop code used in training (:func:`posedistill.data.transforms.crop_person`
+ :func:`~posedistill.data.transforms.normalize_image`); heatmap peaks are decoded by
:class:`posedistill.codec.HeatmapCodec` and mapped back to original image pixels.

Backends: ``torch`` (a checkpoint, run in eager PyTorch after BN folding and with channels_last) and ``onnx``
(a file from ``posedistill export``, run by ONNX Runtime, fp32 or int8).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .checkpoint import model_from_checkpoint
from .codec import HeatmapCodec, crop_to_image
from .data.images import check_image_file, load_image
from .data.transforms import crop_person, normalize_image
from .errors import CheckpointError, ConfigError, DataError
from .export import INPUT_NAME, load_onnx_session, onnx_metadata, optimize_for_inference
from .skeleton import JointSet, get_joint_set

__all__ = [
    "BOX_PADDING", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "Predictor", "box_to_square", "check_box",
    "draw_pose", "iter_frames", "load_bbox_file", "parse_bbox", "collect_inputs",
    "default_weights", "sha256_file", "calibration_batches", "DEFAULT_WEIGHTS_DIR",
]

BOX_PADDING = 1.25
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
Box = Sequence[float]


# ---------------------------------------------------------------------------------------------- default weights
def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def default_weights(weights_dir: str | os.PathLike | None = None, *, role: str = "student") -> Path:
    """Path of the package's default weights, verified by sha256.

    ``weights_dir/default.json`` (default ``src/posedistill/weights/``) is ``{"file": NAME, "sha256": HEX}``
    naming a checkpoint or ONNX file in the same folder (the deployed FPD student), optionally with
    ``"teacher": {"file": NAME, "sha256": HEX}`` for its teacher (``role="teacher"``). Raises
    :class:`CheckpointError` (one line) when the manifest or the file is missing, malformed or does not match
    its checksum.
    """
    if role not in ("student", "teacher"):
        raise ValueError(f"role must be 'student' or 'teacher', got {role!r}")
    folder = Path(weights_dir) if weights_dir is not None else DEFAULT_WEIGHTS_DIR
    manifest = folder / "default.json"
    if not manifest.is_file():
        raise CheckpointError(
            f"{manifest}: no default weights are installed yet; pass --weights CKPT_OR_ONNX (a checkpoint from "
            "`posedistill train` or a model from `posedistill export`)"
        )
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
        if role == "teacher":
            info = info.get("teacher") or {}
        name, expected = str(info["file"]), str(info["sha256"]).lower()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{manifest}: malformed default-weights manifest ({type(exc).__name__}; "
                              "expected {\"file\": ..., \"sha256\": ...})") from exc
    path = folder / name
    if Path(name).name != name or not path.is_file():
        raise CheckpointError(f"{path}: default weights named by {manifest} not found")
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(f"{path}: sha256 {actual[:12]}... does not match {expected[:12]}... in {manifest} "
                              "(corrupt or replaced file)")
    return path


# ---------------------------------------------------------------------------------------------- boxes
def parse_bbox(text: str) -> list[float]:
    """``"x,y,w,h"`` -> ``[x, y, w, h]``; ConfigError on anything else."""
    try:
        box = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or not all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise ConfigError(f"--bbox must be x,y,w,h with w, h > 0, got {text!r}")
    return box


def _as_boxes(value: Any, where: str) -> list[list[float]]:
    boxes = value if value and isinstance(value[0], (list, tuple)) else [value]
    out = []
    for box in boxes:
        if (not isinstance(box, (list, tuple)) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise DataError(f"{where}: a box must be [x, y, w, h], got {box!r}")
        out.append([float(v) for v in box])
    return out


def load_bbox_file(path: str | os.PathLike) -> dict[str, list[list[float]]]:
    """Read a JSON object mapping image file names to one box ``[x, y, w, h]`` or a list of boxes."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: box file not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable JSON box file ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: box file must be a JSON object {{image name: [x, y, w, h] or [[...], ...]}}")
    return {str(k): _as_boxes(v, f"{path}: {k}") for k, v in data.items()}


def box_to_square(box: Box) -> tuple[np.ndarray, float]:
    """Crop centre (x, y) and side for a person box: the box centre and ``max(w, h) * BOX_PADDING``."""
    x, y, w, h = (float(v) for v in box)
    return np.array([x + w / 2.0, y + h / 2.0]), max(w, h) * BOX_PADDING


def check_box(box: Box, width: int, height: int, where: str) -> list[float]:
    """Validate a box against an image of ``width`` x ``height``; DataError naming ``where`` if it is unusable."""
    x, y, w, h = (float(v) for v in box)
    if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
        raise DataError(f"{where}: box {list(box)} must have finite x, y and w, h > 0")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise DataError(f"{where}: box {[x, y, w, h]} lies outside the {width}x{height} image")
    return [x, y, w, h]


# ---------------------------------------------------------------------------------------------- drawing
_SIDE_COLORS = {"left": (0, 200, 0), "right": (0, 80, 255), "centre": (255, 160, 0)}  # BGR


def draw_pose(
    image: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray | None,
    joint_set: str | JointSet,
    *,
    bbox: Box | None = None,
    min_score: float = 0.0,
) -> np.ndarray:
    """Copy of a BGR image with the skeleton drawn (left limbs green, right orange, centre blue)."""
    js = get_joint_set(joint_set)
    out = image.copy()
    pts = np.asarray(keypoints, dtype=np.float64)
    ok = np.ones(len(pts), bool) if scores is None else np.asarray(scores) >= min_score
    thick = max(1, int(round(max(image.shape[:2]) / 200)))
    if bbox is not None:
        x, y, w, h = (int(round(v)) for v in bbox)
        cv2.rectangle(out, (x, y), (x + w, y + h), (200, 200, 200), 1, cv2.LINE_AA)
    for a, b in js.limbs:
        if ok[a] and ok[b]:
            pa, pb = tuple(int(round(v)) for v in pts[a]), tuple(int(round(v)) for v in pts[b])
            cv2.line(out, pa, pb, _SIDE_COLORS[js.limb_side((a, b))], thick + 1, cv2.LINE_AA)
    for j, p in enumerate(pts):
        if ok[j]:
            cv2.circle(out, tuple(int(round(v)) for v in p), thick + 2, _SIDE_COLORS[js.side(j)], -1, cv2.LINE_AA)
    return out


# ---------------------------------------------------------------------------------------------- predictor
@dataclass
class Predictor:
    """Single-person pose estimator around a checkpoint (``backend="torch"``) or an ONNX model (``"onnx"``).

    Example::

        p = Predictor("student.pt")                       # or Predictor("student_int8.onnx", backend="onnx")
        people = p.predict(cv2.imread("a.jpg"), boxes=[[x, y, w, h]])
        people[0]["keypoints"][0]  # {"name": "right_ankle", "x": ..., "y": ..., "score": ...}

    Args:
        weights: checkpoint (``.pt``) or ONNX file; None: the package default (:func:`default_weights`).
        backend: ``"torch"`` or ``"onnx"`` (default: from the file suffix, ``.onnx`` -> onnx).
        joint_set: expected joint set; weights for another set raise :class:`CheckpointError`.
        threads: intra-op threads (None: library default).
        dark: DARK sub-pixel decoding instead of the quarter-pixel shift.
        channels_last: channels_last memory format in the torch backend (faster on CPU).
    """

    weights: str | os.PathLike | None = None
    backend: str | None = None
    joint_set: str | None = None
    threads: int | None = None
    dark: bool = False
    channels_last: bool = True
    input_size: int = field(init=False)
    joints: JointSet = field(init=False)
    _model: Any = field(init=False, repr=False)
    _session: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        path = Path(self.weights) if self.weights is not None else default_weights()
        self.weights = path
        backend = self.backend or ("onnx" if path.suffix.lower() == ".onnx" else "torch")
        if backend not in ("torch", "onnx"):
            raise ConfigError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        self.backend = backend
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        self._model = self._session = None
        if backend == "torch":
            if path.suffix.lower() == ".onnx":
                raise CheckpointError(f"{path}: an ONNX model needs --backend onnx")
            model, ckpt = model_from_checkpoint(path)
            declared, k, size = ckpt["joint_set"], int(ckpt["arch"]["num_joints"]), ckpt["input_size"]
            self._model = optimize_for_inference(model, channels_last=self.channels_last)
        else:
            self._session = load_onnx_session(path, threads=self.threads)
            meta = onnx_metadata(self._session)
            if "joint_set" not in meta:
                raise CheckpointError(f"{path}: ONNX model has no joint_set metadata (export it with "
                                      "`posedistill export`)")
            shape = self._session.get_inputs()[0].shape
            k = self._session.get_outputs()[0].shape[1]
            declared, size = meta["joint_set"], shape[2]
        try:
            self.joints = get_joint_set(declared)
        except ConfigError:
            raise CheckpointError(f"{path}: weights declare unknown joint set {declared!r}") from None
        if not isinstance(k, int) or k != self.joints.num_joints:
            raise CheckpointError(f"{path}: model predicts {k} joints but joint set {self.joints.name!r} has "
                                  f"{self.joints.num_joints}")
        if self.joint_set is not None and get_joint_set(self.joint_set).names != self.joints.names:
            raise CheckpointError(f"{path}: weights are for joint set {self.joints.name!r}, expected "
                                  f"{get_joint_set(self.joint_set).name!r}")
        if isinstance(size, (list, tuple)):
            size = size[0]
        if not isinstance(size, int) or size <= 0:
            raise CheckpointError(f"{path}: cannot tell the model's input size ({size!r})")
        self.input_size = int(size)
        self._codec = HeatmapCodec(input_size=self.input_size, stride=4)

    # -- core
    def heatmaps(self, batch: np.ndarray) -> np.ndarray:
        """Last-stack heatmaps (N, K, h, w) float32 of normalised crops (N, 3, S, S)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._session is not None:
            return self._session.run(None, {INPUT_NAME: batch})[0]
        x = torch.from_numpy(batch)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        threads = self.threads
        old = torch.get_num_threads()
        try:
            if threads is not None:
                torch.set_num_threads(threads)
            with torch.inference_mode():
                return self._model(x)[-1].float().contiguous().numpy()
        finally:
            if threads is not None:
                torch.set_num_threads(old)

    def preprocess(self, image: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
        """Normalised crop (3, S, S) and its image->crop matrix (2, 3) for one person box."""
        center, side = box_to_square(box)
        crop, matrix = crop_person(image, center, side, 0.0, self.input_size)
        return normalize_image(crop), matrix

    def predict_crops(self, crops: np.ndarray, matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K, 2) in image pixels and scores (N, K) for preprocessed crops and their matrices."""
        coords, scores = self._codec.decode(self.heatmaps(crops), dark=self.dark)
        return crop_to_image(coords, matrices), scores

    def record(self, box: Box, keypoints: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
        """One JSON-ready person: ``{"bbox", "keypoints": [{"name", "x", "y", "score"}]}``."""
        return {
            "bbox": [float(v) for v in box],
            "keypoints": [
                {"name": n, "x": float(p[0]), "y": float(p[1]), "score": float(s)}
                for n, p, s in zip(self.joints.names, keypoints, scores)
            ],
        }

    def predict(self, image: np.ndarray, boxes: Sequence[Box] | None = None, *,
                where: str = "image") -> list[dict[str, Any]]:
        """Pose of each person box in one BGR uint8 image (default box: the whole image)."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise DataError(f"{where}: expected an H x W x 3 BGR image")
        h, w = image.shape[:2]
        boxes = [check_box(b, w, h, where) for b in (boxes or [[0.0, 0.0, float(w), float(h)]])]
        crops, mats = zip(*(self.preprocess(image, b) for b in boxes))
        pts, scores = self.predict_crops(np.stack(crops), np.stack(mats))
        return [self.record(b, p, s) for b, p, s in zip(boxes, pts, scores)]


# ---------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class _Source:
    path: Path  # as given (for the "image" field)
    kind: str  # "image" | "video"
    in_folder: bool = False  # found by listing a folder: a bad one is reported and skipped, not fatal


def collect_inputs(inputs: Iterable[str | os.PathLike]) -> list[_Source]:
    """Expand image files, folders (their images, sorted, not recursive) and video files into sources."""
    sources: list[_Source] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(f"{p}: folder contains no images ({', '.join(IMAGE_EXTENSIONS)})")
            sources += [_Source(q, "image", in_folder=True) for q in found]
        elif not p.exists():
            raise DataError(f"{p}: input not found")
        elif p.suffix.lower() in VIDEO_EXTENSIONS:
            sources.append(_Source(p, "video"))
        else:
            sources.append(_Source(p, "image"))
    if not sources:
        raise DataError("no input images or videos given")
    return sources


@contextlib.contextmanager
def _video(path: Path) -> Iterator[tuple[cv2.VideoCapture, int, float, tuple[int, int]]]:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"{path}: cannot open video (unreadable or unsupported format)")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        yield cap, n, fps, size
    finally:
        cap.release()


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """BGR frames of a video; DataError when it cannot be opened or has no decodable frame."""
    path = Path(path)
    with _video(path) as (cap, _, _, _):
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield frame
    if count == 0:
        raise DataError(f"{path}: video has no decodable frames")


def _check_sources(sources: Sequence[_Source]) -> int:
    """Fail fast (before any output) on unreadable inputs; returns the expected number of images/frames."""
    total = 0
    for src in sources:
        if src.kind == "image":
            problem = check_image_file(src.path)
            if problem and not src.in_folder:
                raise DataError(f"{src.path}: {problem}")
            total += 1
        else:
            with _video(src.path) as (cap, n, _, _):
                ok, _frame = cap.read()
                if not ok:
                    raise DataError(f"{src.path}: video has no decodable frames")
                total += max(n, 1)
    return total


def _boxes_for(src: _Source, boxes: dict[str, list[list[float]]] | None,
               bbox: Box | None) -> list[list[float]] | None:
    if bbox is not None:
        return [list(bbox)]
    if boxes:
        for key in (str(src.path), src.path.name):
            if key in boxes:
                return boxes[key]
    return None


def _draw_name(src: _Source, used: set[str]) -> str:
    name = src.path.name if src.kind == "image" else src.path.stem + ".mp4"
    stem, suffix = os.path.splitext(name)
    candidate, i = name, 1
    while candidate in used:
        candidate, i = f"{stem}_{i}{suffix}", i + 1
    used.add(candidate)
    return candidate


# predict_paths (images, folders and videos in batches) lives in posedistill.pipeline (issue 14).


# ---------------------------------------------------------------------------------------------- calibration
def calibration_batches(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    input_size: int,
    *,
    limit: int = 64,
    batch_size: int = 1,
    bbox_file: str | os.PathLike | None = None,
) -> list[np.ndarray]:
    """Preprocessed crops (batches of N x 3 x S x S float32) of up to ``limit`` real images for int8 calibration.

    ``source`` is an image folder, image files or a video (its first frames); each image is cropped at the
    boxes of ``bbox_file`` or as a whole, exactly like :class:`Predictor` does.
    """
    if limit < 1 or batch_size < 1:
        raise ConfigError(f"calibration limit and batch size must be >= 1, got {limit}, {batch_size}")
    sources = collect_inputs([source] if isinstance(source, (str, os.PathLike)) else source)
    boxes = load_bbox_file(bbox_file) if bbox_file is not None else None
    crops: list[np.ndarray] = []
    for src in sources:
        frames = [load_image(src.path)] if src.kind == "image" else iter_frames(src.path)
        for frame in frames:
            h, w = frame.shape[:2]
            for box in _boxes_for(src, boxes, None) or [[0.0, 0.0, float(w), float(h)]]:
                center, side = box_to_square(check_box(box, w, h, str(src.path)))
                crops.append(normalize_image(crop_person(frame, center, side, 0.0, input_size)[0]))
            if len(crops) >= limit:
                break
        if len(crops) >= limit:
            break
    crops = crops[:limit]
    return [np.stack(crops[i:i + batch_size]) for i in range(0, len(crops), batch_size)]
