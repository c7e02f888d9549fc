"""Training canvases of the person finder (:mod:`posedistill.models.finder`): real photos letterboxed, pasted over
other real photos, or paired, with CenterNet targets.

Every canvas is S x S BGR uint8 with a list of *target* boxes (annotated people, ``[x, y, w, h]`` = the extent of
their visible joints, canvas pixels) and *ignore* boxes (a person visible but degraded or half covered: neither
positive nor negative). Modes (probabilities in :data:`MODES`):

* ``plain``: the photo alone, letterboxed at a random scale and position (0.7-1.0 x the fitting scale), or zoomed
  in (1.0-1.6 x, the person's centre kept on the canvas); padding the letterbox colour or a random colour. A
  user's photo is a plain photo: this is the main case.
* ``paste``: the photo (0.3-0.9 of the canvas) pasted over ANOTHER real photo that fills the canvas, with a
  feathered rectangular or elliptical alpha border (width 0-25 % of the photo's side; a hard border in a fifth of
  the pastes). The background photo is shown as it is (its annotated person is a target too where at least 75 %
  of its visible joints stay uncovered, an ignore box where 25-75 % do), pixelated into 6-20 blocks, or blurred
  (its person an ignore box): so the paste border marks neither "the" person nor "no person".
* ``pair``: two photos side by side (or one above the other), each letterboxed into its part: both annotated
  people are targets (the finder is a people finder; the caller takes the best-scoring one).

Then a horizontal flip (p 0.5) and colour jitter (brightness, contrast, saturation +-30 %, grey p 0.1, blur
p 0.1). :func:`encode_centres` makes the targets: a Gaussian per person centre on the stride grid, a weight map
that is zero around ignore boxes, and each person's cell, sub-cell offset and log size.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import DataError
from ..models.finder import FILL_BGR
from .records import PersonRecord

__all__ = ["MODES", "PHOTO_SIDE", "PhotoBank", "joints_extent", "sample_canvas", "encode_centres"]

MODES = {"plain": 0.5, "paste": 0.3, "pair": 0.2}
#: photos are kept shrunk to at most this side (the finder sees them at 128)
PHOTO_SIDE = 256


def joints_extent(joints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """``[x, y, w, h]`` of the visible joints (w, h at least 1 px)."""
    pts = np.asarray(joints, np.float64)[np.asarray(visible) > 0]
    lo, hi = pts.min(0), pts.max(0)
    return np.array([lo[0], lo[1], max(hi[0] - lo[0], 1.0), max(hi[1] - lo[1], 1.0)])


class PhotoBank:
    """The photos of some person records, shrunk to at most :data:`PHOTO_SIDE` a side, in one ragged uint8 buffer
    in memory, with their joints and visibility in the shrunk photos' pixels (about 1 GB for LSPET's 8,800
    training photos). A record with fewer than two visible joints is kept but never sampled as a person."""

    def __init__(self, records: Sequence[PersonRecord], *, side: int = PHOTO_SIDE) -> None:
        if not records:
            raise DataError("the person finder needs at least one training photo")
        chunks, offsets, shapes, joints, visible = [], [0], [], [], []
        for rec in records:
            img = cv2.imread(str(rec.image), cv2.IMREAD_COLOR)
            if img is None:
                raise DataError(f"{rec.image}: unreadable image")
            h, w = img.shape[:2]
            s = min(1.0, side / max(h, w))
            if s < 1:
                img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            chunks.append(img.reshape(-1))
            offsets.append(offsets[-1] + img.size)
            shapes.append(img.shape[:2])
            joints.append(np.asarray(rec.joints, np.float32) * s)
            visible.append(np.asarray(rec.visible, np.float32))
        self.buffer = np.concatenate(chunks)
        self.offsets, self.shapes = np.array(offsets, np.int64), np.array(shapes, np.int32)
        self.joints, self.visible = np.stack(joints), np.stack(visible)
        self.people = np.array([i for i in range(len(shapes)) if self.usable(i)])
        if len(self.people) < 2:
            raise DataError("the person finder needs at least two photos with two or more visible joints")

    def __len__(self) -> int:
        return len(self.shapes)

    def photo(self, i: int) -> np.ndarray:
        h, w = self.shapes[i]
        return self.buffer[self.offsets[i]:self.offsets[i + 1]].reshape(h, w, 3)

    def usable(self, i: int) -> bool:
        return bool((self.visible[i] > 0).sum() >= 2)


# -- augmentation
def _place(photo: np.ndarray, scale: float, x0: float, y0: float, size: tuple[int, int],
           dst: np.ndarray | None = None, border_value=FILL_BGR) -> np.ndarray:
    """``photo`` shrunk by ``scale`` (INTER_AREA, as at inference) and moved to (x0, y0) on a ``size`` (w, h)
    canvas (over ``dst`` when given, else on ``border_value``)."""
    h, w = photo.shape[:2]
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(photo, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    m = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])
    if dst is not None:
        return cv2.warpAffine(small, m, size, dst=dst.copy(), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_TRANSPARENT)
    return cv2.warpAffine(small, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=border_value)


def _fill(rng: np.random.Generator):
    return FILL_BGR if rng.random() < 0.7 else tuple(int(v) for v in rng.integers(0, 256, 3))


def _letterboxed(bank: PhotoBank, i: int, w: int, h: int, rng: np.random.Generator, *, zoom: bool = True):
    """Photo ``i`` on a w x h canvas at a random scale and position; returns (canvas, target box)."""
    photo = bank.photo(i)
    ph, pw = photo.shape[:2]
    box = joints_extent(bank.joints[i], bank.visible[i])
    fit = min(w / pw, h / ph)
    if zoom and rng.random() < 0.3:
        s = fit * rng.uniform(1.0, 1.6)
        # the person's box centre stays on the canvas, at least 10 % of the side from its edges
        cx, cy = (box[0] + box[2] / 2) * s, (box[1] + box[3] / 2) * s
        lo_x, hi_x = min(0.0, w - pw * s), max(0.0, w - pw * s)
        lo_y, hi_y = min(0.0, h - ph * s), max(0.0, h - ph * s)
        x0 = np.clip(rng.uniform(lo_x, hi_x), 0.1 * w - cx, 0.9 * w - cx)
        y0 = np.clip(rng.uniform(lo_y, hi_y), 0.1 * h - cy, 0.9 * h - cy)
    else:
        s = fit * rng.uniform(0.7, 1.0)
        x0, y0 = rng.uniform(0, w - pw * s), rng.uniform(0, h - ph * s)
    canvas = _place(photo, s, x0, y0, (w, h), border_value=_fill(rng))
    sx, sy = round(pw * s) / pw, round(ph * s) / ph
    return canvas, np.array([box[0] * sx + x0, box[1] * sy + y0, box[2] * sx, box[3] * sy])


def _alpha_mask(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Alpha (h, w) float32 in [0, 1] of a pasted photo: a rectangle or an ellipse with a feathered edge."""
    feather = 0.0 if rng.random() < 0.2 else rng.uniform(0.03, 0.25) * min(w, h)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.3:  # ellipse: distance inside its border, approximately
        ax, ay = w / 2, h / 2
        r = np.sqrt(((xx + 0.5 - ax) / ax) ** 2 + ((yy + 0.5 - ay) / ay) ** 2)
        inside = (1.0 - r) * min(ax, ay)
    else:
        inside = np.minimum(np.minimum(xx + 0.5, w - xx - 0.5), np.minimum(yy + 0.5, h - yy - 0.5))
    if feather <= 0:
        return (inside > 0).astype(np.float32)
    return np.clip(inside / feather, 0.0, 1.0)


def _sample_plain(bank, i, size, rng):
    canvas, box = _letterboxed(bank, i, size, size, rng)
    return canvas, [box], []


def _sample_pair(bank, i, size, rng):
    j = int(rng.integers(len(bank)))
    while not bank.usable(j):
        j = int(rng.integers(len(bank)))
    split = int(size * rng.uniform(0.35, 0.65))
    horizontal = rng.random() < 0.75
    canvas = np.empty((size, size, 3), np.uint8)
    boxes = []
    for k, (idx, start, extent) in enumerate(((i, 0, split), (j, split, size - split))):
        if horizontal:
            part, box = _letterboxed(bank, idx, extent, size, rng, zoom=False)
            canvas[:, start:start + extent] = part
            box[0] += start
        else:
            part, box = _letterboxed(bank, idx, size, extent, rng, zoom=False)
            canvas[start:start + extent] = part
            box[1] += start
        boxes.append(box)
    if rng.random() < 0.5:
        order = [1, 0]
        boxes = [boxes[o] for o in order]
    return canvas, boxes, []


def _sample_paste(bank, i, size, rng):
    j = int(rng.integers(len(bank)))
    while not bank.usable(j) or j == i:
        j = int(rng.integers(len(bank)))
    # background photo j covers the canvas (1.0-1.5 x the covering scale)
    bg = bank.photo(j)
    bh, bw = bg.shape[:2]
    s = max(size / bw, size / bh) * rng.uniform(1.0, 1.5)
    x0, y0 = rng.uniform(size - bw * s, 0), rng.uniform(size - bh * s, 0)
    canvas = _place(bg, s, x0, y0, (size, size))
    sxb, syb = round(bw * s) / bw, round(bh * s) / bh
    bg_joints = bank.joints[j] * np.array([sxb, syb]) + np.array([x0, y0])
    bg_vis = bank.visible[j].copy()
    kind = rng.choice(["photo", "pixelated", "blurred"], p=[0.5, 0.25, 0.25])
    if kind == "pixelated":
        blocks = int(rng.integers(6, 21))
        small = cv2.resize(canvas, (blocks, blocks), interpolation=cv2.INTER_AREA)
        canvas = cv2.resize(small, (size, size), interpolation=cv2.INTER_NEAREST)
    elif kind == "blurred":
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(3.0, 8.0))
    # foreground photo i, pasted with a feathered alpha
    photo = bank.photo(i)
    ph, pw = photo.shape[:2]
    fs = rng.uniform(0.3, 0.9) * size / max(ph, pw)
    nw, nh = max(1, round(pw * fs)), max(1, round(ph * fs))
    small = cv2.resize(photo, (nw, nh), interpolation=cv2.INTER_AREA if fs < 1 else cv2.INTER_LINEAR)
    fx, fy = int(rng.integers(0, size - nw + 1)), int(rng.integers(0, size - nh + 1))
    box = joints_extent(bank.joints[i], bank.visible[i])
    sx, sy = nw / pw, nh / ph
    box = np.array([box[0] * sx + fx, box[1] * sy + fy, box[2] * sx, box[3] * sy])
    alpha = _alpha_mask(nw, nh, rng)
    # keep the person's joints inside the opaque part; fall back to a plain rectangle otherwise
    fj = bank.joints[i][bank.visible[i] > 0] * np.array([sx, sy])
    ji = np.clip(np.round(fj).astype(int), 0, [nw - 1, nh - 1])
    if np.mean(alpha[ji[:, 1], ji[:, 0]] > 0.5) < 0.9:
        alpha = np.ones((nh, nw), np.float32)
    region = canvas[fy:fy + nh, fx:fx + nw].astype(np.float32)
    a = alpha[:, :, None]
    canvas[fy:fy + nh, fx:fx + nw] = np.clip(a * small + (1 - a) * region + 0.5, 0, 255).astype(np.uint8)
    full_alpha = np.zeros((size, size), np.float32)
    full_alpha[fy:fy + nh, fx:fx + nw] = alpha
    targets, ignores = [box], []
    if kind != "pixelated":
        v = bg_vis > 0
        pts = bg_joints[v]
        on = (pts[:, 0] >= 0) & (pts[:, 0] < size) & (pts[:, 1] >= 0) & (pts[:, 1] < size)
        ij = np.clip(np.round(pts).astype(int), 0, size - 1)
        uncovered = on & (full_alpha[ij[:, 1], ij[:, 0]] < 0.5)
        frac = uncovered.mean() if len(pts) else 0.0
        if frac >= 0.25 and uncovered.sum() >= 2:
            bbox = joints_extent(pts[uncovered], np.ones(uncovered.sum()))
            if kind == "photo" and frac >= 0.75:
                targets.append(bbox)
            else:
                ignores.append(bbox)
    return canvas, targets, ignores


def _colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(np.float32)
    if rng.random() < 0.8:
        x = x * rng.uniform(0.7, 1.3)  # brightness
        mean = x.mean()
        x = (x - mean) * rng.uniform(0.7, 1.3) + mean  # contrast
        grey = x.mean(axis=2, keepdims=True)
        x = (x - grey) * rng.uniform(0.7, 1.3) + grey  # saturation
    if rng.random() < 0.1:
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    out = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.1:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    return out


def sample_canvas(bank: PhotoBank, i: int, size: int, rng: np.random.Generator, modes=MODES):
    """One augmented canvas (S, S, 3) uint8 BGR, its target boxes and ignore boxes."""
    mode = rng.choice(list(modes), p=list(modes.values()))
    canvas, targets, ignores = {"plain": _sample_plain, "pair": _sample_pair, "paste": _sample_paste}[mode](
        bank, i, size, rng)
    if rng.random() < 0.5:
        canvas = np.ascontiguousarray(canvas[:, ::-1])
        targets = [np.array([size - b[0] - b[2], b[1], b[2], b[3]]) for b in targets]
        ignores = [np.array([size - b[0] - b[2], b[1], b[2], b[3]]) for b in ignores]
    return _colour_jitter(canvas, rng), targets, ignores


# -- targets
def encode_centres(targets, ignores, size: int, stride: int):
    """CenterNet targets on the (size / stride)^2 grid: heat (G, G) Gaussians at the box centres (sigma = an
    eighth of the box's geometric-mean side, at least 0.6 cells), a weight map (0 around ignore boxes), and per
    target (cell index, offset (2,), log size / S (2,))."""
    g = size // stride
    heat = np.zeros((g, g), np.float32)
    weight = np.ones((g, g), np.float32)
    yy, xx = np.mgrid[0:g, 0:g].astype(np.float32)
    cells, regs = [], []
    for b in ignores:
        cx, cy = (b[0] + b[2] / 2) / stride, (b[1] + b[3] / 2) / stride
        sig = max(0.6, np.sqrt(b[2] * b[3]) / stride / 8)
        weight[((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2) <= (3 * sig) ** 2] = 0.0
    for b in targets:
        cx, cy = (b[0] + b[2] / 2) / stride, (b[1] + b[3] / 2) / stride
        ix, iy = int(np.clip(np.floor(cx), 0, g - 1)), int(np.clip(np.floor(cy), 0, g - 1))
        sig = max(0.6, np.sqrt(b[2] * b[3]) / stride / 8)
        gauss = np.exp(-((xx - ix) ** 2 + (yy - iy) ** 2) / (2 * sig ** 2))
        heat = np.maximum(heat, gauss)
        weight[np.abs(gauss) > 0.01] = 1.0
        cells.append(iy * g + ix)
        regs.append([np.clip(cx - ix, 0, 1), np.clip(cy - iy, 0, 1), np.log(max(b[2], 2.0) / size),
                     np.log(max(b[3], 2.0) / size)])
    return heat, weight, cells, regs
