"""The top-down training/evaluation dataset: crop around each person, augment, encode heatmap targets."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..codec import HeatmapCodec, affine_points
from ..errors import ConfigError, DataError
from ..models.meta import ModelMeta
from ..skeleton import JointSet
from .images import check_image_file, load_image
from .records import PersonRecord
from .transforms import (
    AugmentConfig,
    Augmentation,
    color_jitter,
    crop_person,
    erase_rectangle,
    normalize_image,
    sample_augmentation,
)

__all__ = ["PoseDataset", "record_problem"]


def record_problem(rec: PersonRecord, jset: JointSet, *, check_image: bool = True) -> str | None:
    """Why ``rec`` cannot be used (``None`` when it can): joint count, non-finite values, bad box, bad image."""
    k = jset.num_joints
    if rec.joints.shape != (k, 2) or rec.visible.shape != (k,):
        return f"{rec.joints.shape[0]} joints but the {jset.name} joint set has {k}"
    if not np.isfinite(rec.joints[rec.visible > 0]).all():
        return "non-finite joint coordinates"
    if not (np.isfinite(rec.center).all() and np.isfinite(rec.scale) and rec.scale > 0):
        return f"bad person box (center {rec.center.tolist()}, scale {rec.scale})"
    return check_image_file(rec.image) if check_image else None


class PoseDataset(Dataset):
    """Top-down pose samples from :class:`PersonRecord` s.

    Args:
        records: people to sample (from :mod:`posedistill.data.readers`).
        meta: how the model sees pixels (:class:`~posedistill.models.meta.ModelMeta`): the records' joint set,
            the crop side (``input_size``, a multiple of 64), the heatmap ``stride`` and Gaussian ``sigma`` of
            the targets, and the ``mean`` / ``std`` the crops are standardised with, so a model is trained and
            evaluated on exactly the pixels it is run on.
        train: draw augmentation (else: plain crop of the person box, no flip, no jitter).
        augment: augmentation settings (default :class:`AugmentConfig`); ignored when ``train`` is False.
        seed: augmentation seed. Sample ``i`` in epoch ``e`` uses ``np.random.default_rng((seed, e, i))``, so
            results do not depend on worker count, order or resumption.
        skip_bad: drop unusable records (bad joints, missing/unreadable/truncated image) with one warning, and
            replace a sample whose image fails to decode later by the next good one; else raise DataError.
        check_images: check every image file at construction (cheap: header and end marker, no decoding).
        sigma_schedule: ``(sigma_start, epochs)``: targets of epoch ``e`` use a sigma moved linearly from
            ``sigma_start`` to ``sigma`` over ``epochs`` epochs (wide, easy targets first); None: always ``sigma``.

    An item is a dict: ``image`` (3, H, W) float32, ``target`` (K, h, w) float32, ``target_weight`` (K,),
    ``joints`` (K, 2) original-image pixels, ``visible`` (K,), ``center`` (2,), ``scale`` (), ``norm`` (),
    ``matrix`` (2, 3) float64 original->crop (flip included), ``flipped`` () bool, ``index`` () int64,
    ``negative`` () bool. Items may be indexed by ``i`` (uses the epoch of :meth:`set_epoch`) or by ``(epoch, i)``.

    A *negative* (``augment.negative_prob``): a square window of the same photo, 0.5-1.0 x the person's box,
    at least 80 % inside the image, holding none of the person's annotated joints (with a margin of a tenth of
    the window), augmented alike (rotation, flip, colour); its targets are all zero at full weight. Its position
    comes from ``np.random.default_rng((seed, epoch, i, 1))``; a photo with no such window (the person fills
    it), or a record without annotated joints (unlabeled images), gives the ordinary sample instead.
    """

    def __init__(
        self,
        records: Sequence[PersonRecord],
        *,
        meta: ModelMeta,
        train: bool,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        skip_bad: bool = False,
        check_images: bool = True,
        sigma_schedule: tuple[float, int] | None = None,
    ) -> None:
        if meta.input_size < 64 or meta.input_size % 64:
            raise ConfigError(f"input_size must be a positive multiple of 64, got {meta.input_size!r}")
        if seed < 0:
            raise ConfigError(f"seed must be >= 0, got {seed}")
        self.meta = meta
        self.joint_set = meta.joints
        self.input_size = meta.input_size
        self.codec = meta.codec()
        if sigma_schedule is not None and not (sigma_schedule[0] > 0 and sigma_schedule[1] > 0):
            raise ConfigError(f"sigma_schedule must be (sigma_start > 0, epochs > 0), got {sigma_schedule!r}")
        self.sigma_schedule = sigma_schedule
        self.train = bool(train)
        self.augment = augment if augment is not None else AugmentConfig()
        self.seed = int(seed)
        self.skip_bad = bool(skip_bad)
        self.epoch = 0
        self._flip_index = np.asarray(self.joint_set.flip_index)
        good: list[PersonRecord] = []
        bad: list[str] = []
        for rec in records:
            problem = record_problem(rec, self.joint_set, check_image=check_images)
            if problem is None:
                good.append(rec)
            elif not self.skip_bad:
                raise DataError(f"{rec.image}: {problem}")
            else:
                bad.append(f"{rec.image}: {problem}")
        if bad:
            warnings.warn(f"skipped {len(bad)} of {len(bad) + len(good)} samples with bad data (first: {bad[0]})",
                          stacklevel=2)
        self.num_skipped = len(bad)
        self.records = good

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for augmentation by items indexed with a plain int."""
        self.epoch = int(epoch)

    def codec_for(self, epoch: int) -> HeatmapCodec:
        """The codec that encodes epoch ``epoch``'s targets (its sigma follows ``sigma_schedule``)."""
        if self.sigma_schedule is None:
            return self.codec
        start, epochs = self.sigma_schedule
        sigma = start + (self.codec.sigma - start) * min(epoch / epochs, 1.0)
        if sigma == self.codec.sigma:
            return self.codec
        return HeatmapCodec(input_size=self.input_size, sigma=sigma, stride=self.codec.stride)

    def augmentation(self, index: int, epoch: int | None = None) -> Augmentation:
        """The augmentation sample ``index`` gets in ``epoch`` (identity when not training)."""
        if not self.train:
            return Augmentation()
        e = self.epoch if epoch is None else int(epoch)
        return sample_augmentation(np.random.default_rng((self.seed, e, int(index))), self.augment)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (self.epoch, int(key))
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        for attempt in range(len(self)):
            i = (index + attempt) % len(self)
            try:
                return self._sample(i, epoch)
            except DataError as exc:
                if not self.skip_bad:
                    raise
                warnings.warn(f"skipping unreadable sample {i}: {exc}", stacklevel=2)
        raise DataError("no readable sample left in the dataset")

    def _sample(self, index: int, epoch: int) -> dict:
        rec = self.records[index]
        image = load_image(rec.image)
        aug = self.augmentation(index, epoch)
        window = self._negative_window(rec, image.shape, index, epoch) if aug.negative else None
        if window is not None:
            center, size = window
        else:
            center, size = self._half_body_box(rec, aug.half_body) if aug.half_body else (rec.center, rec.scale)
            center, size = center + np.asarray(aug.shift) * size, size * aug.scale
        crop, matrix = crop_person(image, center, size, aug.rotation, self.input_size, aug.flip)
        if aug.color != (1.0, 1.0, 1.0):
            crop = color_jitter(crop, aug.color)
        if aug.erase is not None:
            crop = erase_rectangle(crop, aug.erase, np.random.default_rng((self.seed, epoch, index, 2)))
        joints_crop = affine_points(rec.joints, matrix)
        visible = rec.visible
        if aug.flip:
            joints_crop, visible = joints_crop[self._flip_index], visible[self._flip_index]
        target, weight = self.codec_for(epoch).encode(joints_crop, visible)
        if window is not None:  # no person here: every joint's heatmap should be flat zero
            target, weight = np.zeros_like(target), np.ones_like(weight)
        return {
            "image": torch.from_numpy(normalize_image(crop, mean=self.meta.mean, std=self.meta.std)),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight),
            "joints": torch.from_numpy(rec.joints.astype(np.float32)),
            "visible": torch.from_numpy(rec.visible.astype(np.float32)),
            "center": torch.from_numpy(rec.center.astype(np.float32)),
            "scale": torch.tensor(rec.scale, dtype=torch.float32),
            "norm": torch.tensor(rec.norm, dtype=torch.float32),
            "matrix": torch.from_numpy(matrix),
            "flipped": torch.tensor(aug.flip),
            "index": torch.tensor(index, dtype=torch.int64),
            "negative": torch.tensor(window is not None),
        }

    def _half_body_box(self, rec: PersonRecord, part: str) -> tuple[np.ndarray, float]:
        """(centre, side) of the square box of the visible ``part`` joints ("upper"/"lower") padded 1.5 x, or
        the person's own box when they have 8 visible joints or fewer, or fewer than 2 on that part (HRNet's
        rule; the other part is tried first)."""
        visible = (rec.visible > 0) & np.isfinite(rec.joints).all(axis=1)
        if visible.sum() <= 8:
            return rec.center, rec.scale
        lower = np.zeros(len(visible), dtype=bool)
        lower[list(self.joint_set.lower_body)] = True
        for chosen in ((lower, ~lower) if part == "lower" else (~lower, lower)):
            pts = rec.joints[visible & chosen]
            if len(pts) >= 2:
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                return (lo + hi) / 2, float(max(max(hi - lo) * 1.5, 0.25 * rec.scale))
        return rec.center, rec.scale

    def _negative_window(self, rec: PersonRecord, shape: tuple[int, ...], index: int,
                         epoch: int) -> tuple[np.ndarray, float] | None:
        """(centre, side) of a window of the photo without the person's joints, or None (see the class doc)."""
        if not (rec.visible > 0).any():  # unlabeled: where the person is, nothing says
            return None
        rng = np.random.default_rng((self.seed, epoch, index, 1))
        h, w = shape[:2]
        joints = rec.joints[np.isfinite(rec.joints).all(axis=1)]
        for _ in range(20):
            side = rec.scale * rng.uniform(0.5, 1.0)
            inside = 0.8 * side  # at most a fifth of the window's side may lie outside the photo
            if inside > min(w, h):
                continue
            x0 = rng.uniform(-(side - inside), w - inside)
            y0 = rng.uniform(-(side - inside), h - inside)
            if min(x0 + side, w) - max(x0, 0) < inside or min(y0 + side, h) - max(y0, 0) < inside:
                continue
            m = 0.1 * side
            hit = ((joints[:, 0] > x0 - m) & (joints[:, 0] < x0 + side + m)
                   & (joints[:, 1] > y0 - m) & (joints[:, 1] < y0 + side + m))
            if not hit.any():
                return np.array([x0 + side / 2, y0 + side / 2]), float(side)
        return None
