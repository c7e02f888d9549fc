"""Geometry of top-down crops and the Gaussian heatmap codec (numpy + OpenCV; no models).

Coordinate convention (used everywhere in posedistill)
------------------------------------------------------
Continuous pixel coordinates with **pixel centres at integers**: pixel ``(i, j)`` (column i, row j) covers
``[i - 0.5, i + 0.5] x [j - 0.5, j + 0.5]`` and an image of width W spans ``[-0.5, W - 0.5]``. This is OpenCV's
convention, so :func:`cv2.warpAffine` with the matrices of :func:`get_affine_transform` is exact.

Heatmaps have ``stride`` (4) input pixels per heatmap pixel; heatmap pixel ``u`` covers input pixels
``[stride*u - 0.5, stride*(u+1) - 0.5]``, so ``x_heatmap = (x_input + 0.5) / stride - 0.5`` (and back:
``x_input = stride * (x_heatmap + 0.5) - 0.5``). Encoding and decoding both use this mapping, so a round trip is
unbiased (no half-pixel drift).

The codec mirrors MMPose 1.x's design (a codec object separate from model and dataset) but is written here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ConfigError

__all__ = [
    "get_affine_transform", "affine_points", "invert_affine", "HeatmapCodec", "input_to_heatmap",
    "heatmap_to_input", "crop_to_image",
]


def _size_wh(output_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(output_size, (int, np.integer)):
        return int(output_size), int(output_size)
    w, h = output_size
    return int(w), int(h)


def get_affine_transform(
    center: Sequence[float] | np.ndarray,
    size: float,
    rotation_deg: float,
    output_size: int | Sequence[int],
    *,
    inverse: bool = False,
) -> np.ndarray:
    """2x3 matrix mapping a rotated square box in the image onto an output image (the crop).

    The box has side ``size`` pixels (width; its height follows the output's aspect ratio, so it is square for a
    square output) and is centred at ``center`` (x, y). The box centre lands at the output centre
    ``((w-1)/2, (h-1)/2)``, the box edges on the output edges ``-0.5`` and ``w-0.5``. The crop shows the image
    rotated counter-clockwise by ``rotation_deg`` (same sense as :func:`cv2.getRotationMatrix2D`).

    Args:
        center: box centre (x, y) in image pixels.
        size: box side in image pixels (> 0).
        rotation_deg: rotation in degrees.
        output_size: crop size, an int (square) or (w, h).
        inverse: return the crop -> image matrix instead.
    """
    if not size > 0:
        raise ConfigError(f"get_affine_transform: box size must be > 0, got {size}")
    w, h = _size_wh(output_size)
    s = w / float(size)
    t = np.deg2rad(rotation_deg)
    a, b = s * np.cos(t), s * np.sin(t)
    cx, cy = float(center[0]), float(center[1])
    ox, oy = (w - 1) / 2.0, (h - 1) / 2.0
    m = np.array([[a, b, ox - a * cx - b * cy], [-b, a, oy + b * cx - a * cy]], dtype=np.float64)
    return invert_affine(m) if inverse else m


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (..., 2, 3) affine matrix (vectorised over leading axes)."""
    m = np.asarray(matrix, dtype=np.float64)
    a = m[..., :, :2]
    det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    inv_a = np.stack(
        [np.stack([a[..., 1, 1], -a[..., 0, 1]], -1), np.stack([-a[..., 1, 0], a[..., 0, 0]], -1)], -2
    ) / det[..., None, None]
    inv_t = -np.einsum("...ij,...j->...i", inv_a, m[..., :, 2])
    return np.concatenate([inv_a, inv_t[..., None]], -1)


def affine_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` to ``points`` (..., 2); returns float64 (..., 2)."""
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def crop_to_image(coords: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Map crop coordinates (N, K, 2) back to the original images through the inverse of each (N, 2, 3)
    image->crop matrix."""
    inv = invert_affine(np.asarray(matrices, dtype=np.float64).reshape(-1, 2, 3))
    c = np.asarray(coords, dtype=np.float64)
    return np.einsum("nij,nkj->nki", inv[:, :, :2], c) + inv[:, None, :, 2]


def input_to_heatmap(x: np.ndarray, stride: int) -> np.ndarray:
    """Input-crop pixel coordinates to heatmap pixel coordinates (see module docstring)."""
    return (np.asarray(x, dtype=np.float64) + 0.5) / stride - 0.5


def heatmap_to_input(u: np.ndarray, stride: int) -> np.ndarray:
    """Heatmap pixel coordinates to input-crop pixel coordinates (see module docstring)."""
    return (np.asarray(u, dtype=np.float64) + 0.5) * stride - 0.5


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(round(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def _blurred_neighbourhood(hm: np.ndarray, px: np.ndarray, py: np.ndarray, sigma: float) -> np.ndarray:
    """The 3x3 neighbourhood around (px, py) of each Gaussian-blurred (M, h, w) heatmap (zeros beyond the border).

    Only these 9 values enter the Taylor expansion, so only they are computed (vectorised over M)."""
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    half = r + 1
    m = hm.shape[0]
    padded = np.pad(hm, ((0, 0), (half, half), (half, half)))
    offs = np.arange(-half, half + 1)
    rows = (py[:, None] + half + offs)[:, :, None]
    cols = (px[:, None] + half + offs)[:, None, :]
    patch = padded[np.arange(m)[:, None, None], rows, cols].astype(np.float64)  # (M, 2h+1, 2h+1)
    windows = np.lib.stride_tricks.sliding_window_view(patch, len(k), axis=2)  # (M, n, 3, len(k))
    patch = windows @ k  # blur along x -> (M, n, 3)
    windows = np.lib.stride_tricks.sliding_window_view(patch, len(k), axis=1)  # (M, 3, 3, len(k))
    return windows @ k  # (M, 3, 3): rows y-1..y+1, cols x-1..x+1


class HeatmapCodec:
    """Encode joints as Gaussian heatmaps at 1/``stride`` resolution and decode heatmaps to coordinates.

    Args:
        input_size: input crop size, int (square) or (w, h); must be a multiple of ``stride``.
        sigma: Gaussian standard deviation in heatmap pixels (2.0 at 64x64, as in Newell et al.).
        stride: input pixels per heatmap pixel.

    The Gaussian is centred at the exact sub-pixel joint position (peak 1, not normalised), so decoding with
    DARK is unbiased. See the module docstring for the coordinate convention.
    """

    def __init__(self, *, input_size: int | Sequence[int] = 256, sigma: float = 2.0, stride: int = 4) -> None:
        w, h = _size_wh(input_size)
        if stride < 1 or w % stride or h % stride or w <= 0 or h <= 0:
            raise ConfigError(f"HeatmapCodec: input size {(w, h)} must be a positive multiple of stride {stride}")
        if not sigma > 0:
            raise ConfigError(f"HeatmapCodec: sigma must be > 0, got {sigma}")
        self.input_size = (w, h)
        self.sigma = float(sigma)
        self.stride = int(stride)

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """Heatmap (w, h)."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    def __repr__(self) -> str:
        return f"HeatmapCodec(input_size={self.input_size}, sigma={self.sigma}, stride={self.stride})"

    def encode(self, joints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps (K, h, w) float32 and target weights (K,) float32 for joints (K, 2) in input-crop pixels.

        A joint gets weight 0 and an all-zero heatmap when it is not visible (``visible <= 0``), not finite, or
        outside the crop (outside ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``).
        """
        joints = np.asarray(joints, dtype=np.float64).reshape(-1, 2)
        visible = np.asarray(visible, dtype=np.float64).reshape(-1)
        if visible.shape[0] != joints.shape[0]:
            raise ConfigError(f"encode: {joints.shape[0]} joints but {visible.shape[0]} visibility flags")
        w, h = self.heatmap_size
        mu = input_to_heatmap(joints, self.stride)
        finite = np.isfinite(mu).all(axis=1)
        mu = np.where(finite[:, None], mu, 0.0)
        inside = (mu[:, 0] >= -0.5) & (mu[:, 0] <= w - 0.5) & (mu[:, 1] >= -0.5) & (mu[:, 1] <= h - 0.5)
        weights = ((visible > 0) & finite & inside).astype(np.float32)
        gx = np.exp(-((np.arange(w)[None, :] - mu[:, :1]) ** 2) / (2 * self.sigma**2))
        gy = np.exp(-((np.arange(h)[None, :] - mu[:, 1:]) ** 2) / (2 * self.sigma**2))
        heatmaps = (gy[:, :, None] * gx[:, None, :]).astype(np.float32) * weights[:, None, None]
        return heatmaps, weights

    def decode(self, heatmaps: np.ndarray, *, dark: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates (N, K, 2) in input-crop pixels and scores (N, K) (the heatmap maxima).

        Without ``dark`` the argmax is shifted a quarter pixel toward the higher neighbour along x and y. With
        ``dark`` the argmax is refined by a second-order Taylor expansion of the log of the Gaussian-smoothed
        heatmap (Zhang et al., "Distribution-Aware Coordinate Representation", CVPR 2020).
        Accepts (K, h, w) too (then returns (K, 2), (K,)).
        """
        hm = np.asarray(heatmaps)
        single = hm.ndim == 3
        if single:
            hm = hm[None]
        if hm.ndim != 4:
            raise ConfigError(f"decode: heatmaps must be (N, K, h, w), got shape {hm.shape}")
        n, k, h, w = hm.shape
        flat = hm.reshape(n * k, h * w)
        idx = flat.argmax(axis=1)
        scores = flat[np.arange(n * k), idx].astype(np.float64)
        py, px = np.divmod(idx, w)
        if dark:
            off = self._dark_offsets(flat.reshape(n * k, h, w), px, py)
        else:
            off = self._quarter_offsets(flat.reshape(n * k, h, w), px, py)
        uv = np.stack([px, py], axis=1) + off
        coords = heatmap_to_input(uv, self.stride).reshape(n, k, 2)
        scores = scores.reshape(n, k)
        return (coords[0], scores[0]) if single else (coords, scores)

    @staticmethod
    def _quarter_offsets(hm: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        m, h, w = hm.shape
        r = np.arange(m)
        xl, xr = np.clip(px - 1, 0, w - 1), np.clip(px + 1, 0, w - 1)
        yu, yd = np.clip(py - 1, 0, h - 1), np.clip(py + 1, 0, h - 1)
        dx = np.sign(hm[r, py, xr] - hm[r, py, xl]) * ((px > 0) & (px < w - 1))
        dy = np.sign(hm[r, yd, px] - hm[r, yu, px]) * ((py > 0) & (py < h - 1))
        return 0.25 * np.stack([dx, dy], axis=1)

    def _dark_offsets(self, hm: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """DARK offsets. The smoothing blur cannot see mass beyond the heatmap border, which biases the peak
        inward, so within the blur radius of the border the Taylor expansion uses the unsmoothed heatmap, and on
        the outermost row/column (no neighbour on one side) the quarter-pixel shift is used instead."""
        m, h, w = hm.shape
        radius = len(_gaussian_kernel(self.sigma)) // 2
        r = np.arange(m)
        peak = hm[r, py, px]
        blurred = _blurred_neighbourhood(hm, px, py, self.sigma)
        padded = np.pad(hm, ((0, 0), (1, 1), (1, 1)), mode="edge")
        raw = padded[r[:, None, None], (py[:, None] + np.arange(3))[:, :, None], (px[:, None] + np.arange(3))[:, None, :]]
        near = (np.minimum(px, w - 1 - px) < radius) | (np.minimum(py, h - 1 - py) < radius)
        nb = np.where(near[:, None, None], raw, blurred)
        off = self._taylor_offsets(np.log(np.maximum(nb, 1e-10)), peak)
        edge = (px == 0) | (px == w - 1) | (py == 0) | (py == h - 1)
        return np.where(edge[:, None], self._quarter_offsets(hm, px, py), off)

    @staticmethod
    def _taylor_offsets(p: np.ndarray, peak: np.ndarray) -> np.ndarray:
        """Newton step ``-H^-1 g`` of the log-heatmap from its (M, 3, 3) neighbourhood of the integer argmax
        (zero where the Hessian is not negative definite), clipped to +-1 pixel."""
        c = p[:, 1, 1]
        dx = 0.5 * (p[:, 1, 2] - p[:, 1, 0])
        dy = 0.5 * (p[:, 2, 1] - p[:, 0, 1])
        dxx = p[:, 1, 2] - 2 * c + p[:, 1, 0]
        dyy = p[:, 2, 1] - 2 * c + p[:, 0, 1]
        dxy = 0.25 * (p[:, 2, 2] - p[:, 2, 0] - p[:, 0, 2] + p[:, 0, 0])
        det = dxx * dyy - dxy**2
        ok = (det > 1e-12) & (dxx < 0) & (dyy < 0) & (peak > 0)
        safe = np.where(ok, det, 1.0)
        ox = -(dyy * dx - dxy * dy) / safe
        oy = -(dxx * dy - dxy * dx) / safe
        off = np.stack([np.where(ok, ox, 0.0), np.where(ok, oy, 0.0)], axis=1)
        return np.clip(off, -1.0, 1.0)

    def decode_to_image(
        self, heatmaps: np.ndarray, matrices: np.ndarray, *, dark: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode (N, K, h, w) heatmaps and map the coordinates to the original images through the inverse of
        each (N, 2, 3) image->crop matrix. Returns coords (N, K, 2) in image pixels and scores (N, K).
        For a horizontally flipped crop, joint j of the output is the image's joint ``flip_index[j]``."""
        coords, scores = self.decode(heatmaps, dark=dark)
        return crop_to_image(coords, matrices), scores
