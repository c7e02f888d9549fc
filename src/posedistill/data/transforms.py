"""Top-down crop, augmentation parameters and image normalisation shared by training and inference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..codec import get_affine_transform
from ..errors import ConfigError

__all__ = [
    "AugmentConfig", "Augmentation", "normalize_image", "denormalize_image", "letterbox",
    "crop_person", "flip_matrix", "sample_augmentation", "color_jitter", "erase_rectangle",
]

@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation (all drawn per sample from a seeded generator).

    Attributes:
        scale_factor: box size multiplied by U(1 - f, 1 + f) (0.25: 0.75-1.25).
        rotation: rotation U(-r, r) degrees, applied with probability ``rotation_prob``.
        rotation_prob: probability of rotating a sample (0.6, as in the HRNet/Hourglass recipes).
        flip: horizontal flip with probability 0.5 (with left/right joint swap).
        color_jitter: each RGB channel multiplied by U(1 - c, 1 + c).
        shift_factor: box centre moved by U(-s, s) x box size along x and y (0: off).
        negative_prob: probability that a training sample is a *negative*: a window of the same photo that holds
            none of the person's joints, with all-zero heatmap targets at full weight, so that the network learns
            to stay low where there is no person (what the localiser ranks its candidate crops by; 0: off).
        half_body_prob: probability of a half-body crop (as HRNet): the box of the visible upper-body or
            lower-body joints (either, with equal odds) padded 1.5 x, for people with more than 8 visible joints
            (scale, shift and rotation still apply; joints outside the crop get weight 0; 0: off).
        erase_prob: probability of random erasing (Zhong et al. 2020): a rectangle of 2-33 % of the crop's area,
            aspect ratio 0.3-3.3, filled with noise; the targets are kept, so hidden joints are still
            supervised (0: off).
    """

    scale_factor: float = 0.25
    rotation: float = 30.0
    rotation_prob: float = 0.6
    flip: bool = True
    color_jitter: float = 0.2
    shift_factor: float = 0.0
    negative_prob: float = 0.0
    half_body_prob: float = 0.0
    erase_prob: float = 0.0

    def __post_init__(self) -> None:
        for name in ("scale_factor", "rotation", "rotation_prob", "color_jitter", "shift_factor", "negative_prob",
                     "half_body_prob", "erase_prob"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"AugmentConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.scale_factor >= 1 or self.color_jitter >= 1 or self.negative_prob >= 1:
            raise ConfigError("AugmentConfig: scale_factor, color_jitter and negative_prob must be < 1")
        if max(self.rotation_prob, self.half_body_prob, self.erase_prob) > 1:
            raise ConfigError("AugmentConfig: rotation_prob, half_body_prob and erase_prob must be <= 1")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Augmentation:
    """One sample's drawn augmentation."""

    scale: float = 1.0
    rotation: float = 0.0
    flip: bool = False
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    shift: tuple[float, float] = (0.0, 0.0)
    negative: bool = False
    half_body: str = ""  # "", "upper" or "lower"
    erase: tuple[float, float, float, float] | None = None  # (x0, y0, w, h) as fractions of the crop's side


def sample_augmentation(rng: np.random.Generator, cfg: AugmentConfig) -> Augmentation:
    """Draw one sample's augmentation. Always consumes the same random numbers whatever ``cfg`` says, so a
    sample's draws do not depend on which options are on."""
    u = rng.random(17)  # the first 9 draws are those of the releases before negative_prob, the 10th before
    # half_body_prob and erase_prob: a generator's first n draws do not depend on how many are asked for
    scale = 1.0 + cfg.scale_factor * (2 * u[0] - 1)
    rotation = cfg.rotation * (2 * u[1] - 1) if u[2] < cfg.rotation_prob else 0.0
    flip = bool(cfg.flip and u[3] < 0.5)
    color = tuple(float(1.0 + cfg.color_jitter * (2 * c - 1)) for c in u[4:7])
    shift = (cfg.shift_factor * (2 * u[7] - 1), cfg.shift_factor * (2 * u[8] - 1))
    negative = bool(u[9] < cfg.negative_prob)
    half_body = ("upper" if u[11] < 0.5 else "lower") if u[10] < cfg.half_body_prob else ""
    erase = None
    if u[12] < cfg.erase_prob:
        area = 0.02 + (0.33 - 0.02) * u[13]
        aspect = float(np.exp(np.log(0.3) + (np.log(3.3) - np.log(0.3)) * u[14]))
        w, h = min(np.sqrt(area * aspect), 1.0), min(np.sqrt(area / aspect), 1.0)
        erase = (float((1 - w) * u[15]), float((1 - h) * u[16]), float(w), float(h))
    return Augmentation(float(scale), float(rotation), flip, color, shift,  # type: ignore[arg-type]
                        negative, half_body, erase)


def erase_rectangle(crop: np.ndarray, rect: tuple[float, float, float, float],
                    rng: np.random.Generator) -> np.ndarray:
    """A copy of ``crop`` with the rectangle ``rect`` = (x0, y0, w, h) (fractions of the crop's side) filled
    with uniform noise from ``rng``."""
    side_h, side_w = crop.shape[:2]
    x0, y0 = int(round(rect[0] * side_w)), int(round(rect[1] * side_h))
    x1 = min(x0 + max(int(round(rect[2] * side_w)), 1), side_w)
    y1 = min(y0 + max(int(round(rect[3] * side_h)), 1), side_h)
    out = crop.copy()
    out[y0:y1, x0:x1] = rng.integers(0, 256, size=(y1 - y0, x1 - x0, crop.shape[2]), dtype=np.uint8)
    return out


def flip_matrix(width: int) -> np.ndarray:
    """2x3 matrix of a horizontal flip of an image ``width`` pixels wide (x -> width - 1 - x)."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


def crop_person(
    image: np.ndarray,
    center: np.ndarray,
    size: float,
    rotation: float,
    output_size: int,
    flip: bool = False,
    *,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop a square box (side ``size`` px, centred at ``center``, rotated by ``rotation`` degrees) to
    ``output_size`` x ``output_size`` by one affine warp, mirrored when ``flip``. Outside the image is black.

    Returns the crop and the (2, 3) original->crop matrix (flip included). Joint labels are not touched here:
    after a flip the caller swaps left/right with ``JointSet.flip_index``.
    """
    m = get_affine_transform(center, size, rotation, output_size)
    if flip:
        f = flip_matrix(output_size)
        m = f[:, :2] @ m + np.concatenate([np.zeros((2, 2)), f[:, 2:]], axis=1)
    source, warp = (image, m) if max(image.shape[:2]) < WARP_LIMIT else _warp_source(image, m, output_size)
    crop = cv2.warpAffine(source, warp, (output_size, output_size), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return crop, m


#: cv2.warpAffine asserts that both sides of its source are under SHRT_MAX (32,767) pixels.
WARP_LIMIT = 32767


def _warp_source(image: np.ndarray, m: np.ndarray, output_size: int) -> tuple[np.ndarray, np.ndarray]:
    """For an image with a side of ``WARP_LIMIT`` pixels or more: the part of it that the crop of matrix ``m``
    reads (with a 3-pixel margin for the interpolation), shrunk (INTER_AREA) below the limit when it is still that
    large, and the matrix from that part to the crop. Outside the image the part is a black pixel."""
    h, w = image.shape[:2]
    s = float(output_size)
    corners = cv2.invertAffineTransform(m) @ np.array([[0, s, 0, s], [0, 0, s, s], [1, 1, 1, 1]])
    x0, x1 = (int(np.clip(v, 0, w)) for v in (np.floor(corners[0].min()) - 3, np.ceil(corners[0].max()) + 4))
    y0, y1 = (int(np.clip(v, 0, h)) for v in (np.floor(corners[1].min()) - 3, np.ceil(corners[1].max()) + 4))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((1, 1, *image.shape[2:]), dtype=image.dtype), m
    part, warp = image[y0:y1, x0:x1], m.copy()
    warp[:, 2] += m[:, :2] @ [x0, y0]
    ph, pw = part.shape[:2]
    if max(ph, pw) >= WARP_LIMIT:
        scale = (WARP_LIMIT - 1) / max(ph, pw)
        size = (max(1, int(pw * scale)), max(1, int(ph * scale)))
        part = cv2.resize(part, size, interpolation=cv2.INTER_AREA)
        fx, fy = size[0] / pw, size[1] / ph  # shrunk pixel u is part pixel (u + 0.5) / fx - 0.5
        back = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5]])
        warp = np.concatenate([warp[:, :2] @ back[:, :2], (warp[:, :2] @ back[:, 2] + warp[:, 2])[:, None]], axis=1)
    return part, warp


def color_jitter(bgr: np.ndarray, factors_rgb: tuple[float, float, float]) -> np.ndarray:
    """Multiply the R, G, B channels of a BGR uint8 image by ``factors_rgb`` (clipped to 0-255)."""
    f = np.asarray(factors_rgb[::-1], dtype=np.float32)
    return np.clip(bgr.astype(np.float32) * f, 0, 255).astype(np.uint8)


def letterbox(image: np.ndarray, size: int, fill: Sequence[int]) -> tuple[np.ndarray, float, np.ndarray]:
    """``image`` scaled to fit ``size`` x ``size`` (area interpolation when shrinking), centred on a canvas of
    colour ``fill``. Returns (canvas, scale, offset): canvas point = image point * scale + offset."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = fill
    x0, y0 = (size - nw) // 2, (size - nh) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = small
    return canvas, scale, np.array([x0, y0], np.float64)


def normalize_image(bgr: np.ndarray, *, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> RGB float32 (3, H, W), scaled to [0, 1] then standardised by ``mean`` / ``std``
    (RGB: a model's :class:`~posedistill.models.meta.ModelMeta` ``mean`` and ``std``)."""
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ConfigError(f"normalize_image expects an H x W x 3 BGR image, got shape {bgr.shape}")
    # one multiply-add per channel, written straight into the (3, H, W) output: (x / 255 - mean) / std
    # = x * scale + offset (a quarter of the time of the float image arithmetic it replaces)
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    scale, offset = 1.0 / (255.0 * std), -mean / std
    out = np.empty((3, *bgr.shape[:2]), dtype=np.float32)
    for c in range(3):  # output channel c (RGB) is input channel 2 - c (BGR)
        np.multiply(bgr[:, :, 2 - c], np.float32(scale[c]), out=out[c], dtype=np.float32)
        out[c] += np.float32(offset[c])
    return out


def denormalize_image(chw: np.ndarray, *, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Inverse of :func:`normalize_image`: RGB float (3, H, W) -> BGR uint8 (H, W, 3)."""
    rgb = (np.asarray(chw, dtype=np.float32).transpose(1, 2, 0) * np.asarray(std, dtype=np.float32)
           + np.asarray(mean, dtype=np.float32))
    return np.ascontiguousarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)[:, :, ::-1])
