"""Teacher heatmap cache: run the frozen FPD teacher once, reuse its heatmaps for every student of a sweep.

Fast Pose Distillation (Zhang, Zhu, Ye, "Fast Human Pose Estimation", CVPR 2019) trains the student on
``alpha * MSE(student, teacher) + (1 - alpha) * MSE(student, GT)``; the paper runs the teacher online on each
augmented batch. posedistill's augmentation is a pure function of (seed, epoch, image index) (see
:class:`~posedistill.data.PoseDataset`) and the teacher is frozen in eval mode, so the teacher's heatmaps of
sample ``i`` in epoch ``e`` are the same whatever batch, order, worker count or student they come with. This
module computes them once per epoch and stores them; a student distilled from the cache gets the losses of
the online scheme (up to the storage precision, see below) without paying for the teacher's forward pass.

Layout of a cache directory::

    meta.json            what the heatmaps depend on (teacher sha256 and arch, joint set, input size, seed,
                         augmentation, dataset and split, records fingerprint, N, amp, storage dtype)
    epoch_0000.npy       N x K x h x w final-stack heatmaps of epoch 0, row i = dataset index i (memory-mappable)
    epoch_0001.npy       ...

Every file is written atomically, and ``meta.json`` before any epoch, so an interrupted build continues at the
first missing epoch. Rows a ``skip_bad`` dataset never produces hold NaN.

Storage precision. ``dtype="float32"`` (the default) stores the teacher's values exactly: a student distilled
from the cache gets the online run's per-epoch losses to 1e-5 relative (``tests/test_teacher_cache.py``).
``dtype="float16"`` halves the disk (one 6,500-image LSPET epoch: 186 MB instead of 373 MB at 128 input, 745 MB
instead of 1.5 GB at 256) but rounds every heatmap value to 11 significant bits. That is far below the noise of
the heatmaps themselves, yet Adam's first steps (an update of about ``lr * sign(g)`` per weight) amplify it:
measured on the tiny test setup (hg2_32 -> hg1_32, 64 input, 16 images, 2 steps per epoch), the first epoch's
losses agree to 2.5e-6 relative, later epochs differ by 0.3-1.6 %, as two online runs would after any rounding
change. Use float16 only when the disk is the limit, and then compare students among themselves.

Build a cache with ``posedistill distill --teacher CKPT --teacher-cache DIR ...`` (built, or completed, before
training) or ``python -m posedistill.training.teacher_cache --teacher CKPT --config CFG --out DIR``. A config with
``distill.teacher_targets: warped`` builds the warped targets of :mod:`posedistill.training.warped_teacher`
instead: the teacher runs once per person rather than once per sample and epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..models import STRIDE
from ..config import ExperimentConfig, load_config
from ..data import PoseDataset, build_loader
from ..errors import ConfigError, DataError, PosedistillError
from ..io import atomic_memmap, atomic_write_json
from ..models.pretrained import sha256_file
from .datasets import read_training_data
from .precision import autocast, resolve_amp
from .teacher_files import (DTYPES, META, check_against, check_teacher_file, read_meta, records_sha256,
                            refuse_other_settings, training_dataset)
from .teacher_model import TeacherView, load_teacher, teacher_view
from .warped_teacher import WarpedTargets, build_warped_targets

__all__ = ["TeacherCache", "build_teacher_cache", "build_teacher_targets", "cache_meta"]

FORMAT = "posedistill-teacher-cache"
# meta keys that must equal the student config's for the heatmaps to be the ones the student would see
_CHECKED = ("joint_set", "input_size", "seed", "dataset", "train_split", "limit", "skip_bad", "augmentation",
            "num_samples", "records_sha256", "amp", "teacher_flip", "teacher_input_size")


def epoch_file(cache_dir: str | Path, epoch: int) -> Path:
    return Path(cache_dir) / f"epoch_{epoch:04d}.npy"


def cache_meta(cfg: ExperimentConfig, dataset: PoseDataset, joint_set: str) -> dict[str, Any]:
    """The student-side part of ``meta.json``: everything the cached heatmaps depend on besides the teacher."""
    return {
        "joint_set": joint_set,
        "input_size": cfg.data.input_size,
        "heatmap_size": dataset.codec.heatmap_size[0],
        "sigma": cfg.data.sigma,  # recorded only: the teacher's heatmaps do not depend on the target's sigma
        "seed": cfg.seed,
        "dataset": cfg.data.dataset,
        "data_root": str(cfg.data.root),  # recorded only: records_sha256 identifies the data wherever it lives
        "train_split": cfg.data.train,
        "limit": cfg.data.limit,
        "skip_bad": cfg.data.skip_bad,
        # options added later are left out while 0, so caches written before they existed still match
        "augmentation": {k: v for k, v in dataclasses.asdict(dataset.augment).items()
                         if not (k in ("negative_prob", "half_body_prob", "erase_prob") and v == 0)},
        "num_samples": len(dataset),
        "records_sha256": records_sha256(dataset),
        "amp": cfg.train.amp,
        # how the teacher saw the crops: recorded only when not the plain view, as caches before these options
        **({"teacher_flip": True} if cfg.distill.teacher_flip else {}),
        **({"teacher_input_size": cfg.distill.teacher_input_size} if cfg.distill.teacher_input_size else {}),
    }


class TeacherCache:
    """Read side of a teacher heatmap cache (see the module docstring).

    Args:
        cache_dir: a directory made by :func:`build_teacher_cache`.
    """

    def __init__(self, cache_dir: str | Path) -> None:
        self.root = Path(cache_dir)
        self.meta = read_meta(self.root, FORMAT, build_hint=f"posedistill distill --teacher CKPT --teacher-cache "
                                                            f"{self.root} ...")
        self._arrays: dict[int, np.ndarray] = {}

    @property
    def num_samples(self) -> int:
        return int(self.meta["num_samples"])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(N, K, h, w)`` of every epoch file."""
        return tuple(self.meta["shape"])  # type: ignore[return-value]

    def _epoch_ok(self, epoch: int) -> bool:
        path = epoch_file(self.root, epoch)
        if not path.is_file():
            return False
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            return False
        return tuple(array.shape) == self.shape and array.dtype == np.dtype(self.meta["dtype"])

    def epochs_done(self) -> int:
        """Number of complete leading epochs (0..n-1 all present and well-formed)."""
        n = 0
        while self._epoch_ok(n):
            n += 1
        return n

    def validate(self, cfg: ExperimentConfig, *, epochs: int | None = None, teacher: str | Path | None = None,
                 dataset: PoseDataset | None = None) -> None:
        """Raise :class:`ConfigError` naming the first difference when the cache does not hold the heatmaps a
        student trained with ``cfg`` would get online: settings that shape the samples, the records, the epochs
        (``epochs``, default ``cfg.train.epochs``) and, given ``teacher``, the teacher checkpoint's content.

        ``dataset``: the student's training dataset when already built (saves reading the split again).
        """
        if dataset is None:
            dataset, joint_set = training_dataset(cfg, stride=cfg.data.input_size // self.shape[-1])
        else:
            joint_set = dataset.joint_set.name
        check_against(self.root, self.meta, cache_meta(cfg, dataset, joint_set), _CHECKED,
                      subject="teacher cache does not", there="in the cache")
        if teacher is not None:
            check_teacher_file(self.root, self.meta, teacher, subject="teacher cache was")
        need = cfg.train.epochs if epochs is None else int(epochs)
        done = self.epochs_done()
        if done < need:
            raise ConfigError(f"{self.root}: teacher cache holds {done} epochs, the run needs {need}; complete it "
                              f"with `posedistill distill --teacher CKPT --teacher-cache {self.root} ...` (resumes)")

    def heatmaps(self, epoch: int, indices: torch.Tensor | np.ndarray | list[int]) -> torch.Tensor:
        """The teacher's final-stack heatmaps of dataset samples ``indices`` in ``epoch`` as a float32
        ``len(indices) x K x h x w`` CPU tensor."""
        array = self._arrays.get(epoch)
        if array is None:
            if not self._epoch_ok(epoch):
                raise DataError(f"{epoch_file(self.root, epoch)}: teacher-cache epoch {epoch} missing or malformed")
            array = self._arrays[epoch] = np.load(epoch_file(self.root, epoch), mmap_mode="r")
        idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices, dtype=np.int64).reshape(-1)
        rows = np.asarray(array[idx], dtype=np.float32)
        if np.isnan(rows).any():
            raise DataError(f"{epoch_file(self.root, epoch)}: no cached heatmaps for some of samples "
                            f"{idx.tolist()} (skipped when the cache was built)")
        return torch.from_numpy(rows)


def build_teacher_cache(teacher_ckpt: str | Path, cfg: ExperimentConfig, cache_dir: str | Path, *,
                        epochs: int | None = None, batch_size: int | None = None, device: str | None = None,
                        progress: bool = True, dtype: str = "float32",
                        on_batch: Callable[[int, int], None] | None = None) -> TeacherCache:
    """Run the frozen teacher (eval mode, ``torch.inference_mode``, ``cfg.train.amp`` autocast as in the online
    engine) over the training split of ``cfg`` for epochs ``0..epochs-1`` (default ``cfg.train.epochs``) and
    store its final-stack heatmaps in ``cache_dir``. Resumes an interrupted build; a complete cache is left
    as it is. Returns the cache.

    Raises ConfigError when ``cache_dir`` already holds a cache for other settings or another teacher.
    ``on_batch(epoch, samples_done)`` is called after every batch is stored (progress, or a fault in tests).
    """
    if dtype not in DTYPES:
        raise ConfigError(f"teacher-cache dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    epochs = cfg.train.epochs if epochs is None else int(epochs)
    if epochs < 1:
        raise ConfigError(f"teacher cache: epochs must be >= 1, got {epochs}")
    root = Path(cache_dir)
    data = read_training_data(cfg, validation=False)
    loaded = load_teacher(teacher_ckpt, cfg, joint_set=data.joint_set, stride=STRIDE)  # the Hourglass family's
    stride, joint_set = loaded.meta.stride, data.joint_set
    dataset = data.train_set(meta=data.meta(stride))
    teacher = loaded.module
    view = teacher_view(cfg, joint_set=joint_set, stride=stride)
    k, h = loaded.meta.num_joints, view.heatmap_size
    meta = {"format": FORMAT, "version": 1,
            "teacher": {"path": str(teacher_ckpt), "sha256": sha256_file(teacher_ckpt),
                        "arch": loaded.checkpoint["arch"]},
            **cache_meta(cfg, dataset, joint_set), "dtype": dtype, "shape": [len(dataset), k, h, h]}
    if (root / META).is_file():
        refuse_other_settings(root, TeacherCache(root).meta, meta, ("teacher", *_CHECKED, "dtype", "shape"),
                              what="a teacher cache")
    else:
        atomic_write_json(root / META, meta)
    cache = TeacherCache(root)
    start = cache.epochs_done()
    if start >= epochs:
        return cache
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    teacher = teacher.to(dev).eval().requires_grad_(False)
    loader = build_loader(dataset, batch_size=batch_size or max(cfg.train.batch_size, 16), shuffle=False,
                          num_workers=cfg.data.workers)
    bar = tqdm(total=(epochs - start) * len(dataset), desc="teacher cache", unit="img", disable=not progress,
               dynamic_ncols=True)
    with bar:
        for epoch in range(start, epochs):
            if cache._epoch_ok(epoch):
                bar.update(len(dataset))
                continue
            _write_epoch(root, epoch, teacher, view, loader, meta, dev, resolve_amp(cfg.train.amp, dev), bar,
                         on_batch)
    return cache


def build_teacher_targets(teacher_ckpt: str | Path, cfg: ExperimentConfig, root: str | Path, *,
                          epochs: int | None = None, batch_size: int | None = None, device: str | None = None,
                          progress: bool = True, dtype: str = "float32") -> TeacherCache | WarpedTargets:
    """The teacher heatmaps ``cfg`` distils from, built (or completed) in ``root``: the warped targets of
    :func:`~posedistill.training.warped_teacher.build_warped_targets` when ``distill.teacher_targets`` is
    ``warped``, else this module's per-epoch cache (``epochs``: see :func:`build_teacher_cache`)."""
    if cfg.distill.teacher_targets == "warped":
        return build_warped_targets(teacher_ckpt, cfg, root, batch_size=batch_size, device=device,
                                    progress=progress, dtype=dtype)
    return build_teacher_cache(teacher_ckpt, cfg, root, epochs=epochs, batch_size=batch_size, device=device,
                               progress=progress, dtype=dtype)


def _write_epoch(root: Path, epoch: int, teacher: torch.nn.Module, view: TeacherView, loader, meta: dict,
                 device: torch.device, amp: str, bar: tqdm, on_batch: Callable[[int, int], None] | None) -> None:
    """Compute one epoch into a temporary memory-mapped .npy and rename it into place (atomic)."""
    with atomic_memmap(epoch_file(root, epoch), meta["dtype"], meta["shape"]) as out:
        out[...] = np.nan
        loader.sampler.set_epoch(epoch)
        done = 0
        for batch in loader:
            with autocast(amp, device):
                hm = view(teacher, batch["image"].to(device))
            out[batch["index"].numpy()] = hm.cpu().numpy().astype(out.dtype)
            bar.update(len(batch["index"]))
            done += len(batch["index"])
            if on_batch is not None:
                on_batch(epoch, done)


def main(argv: list[str] | None = None) -> None:
    """``python -m posedistill.training.teacher_cache --teacher CKPT --config CFG --out DIR [--epochs N]``: the
    per-epoch cache, or the warped targets when the config sets ``distill.teacher_targets: warped``."""
    parser = argparse.ArgumentParser(prog="python -m posedistill.training.teacher_cache",
                                     description="Build (or complete) the teacher heatmaps of FPD students: a "
                                                 "per-epoch cache, or warped targets (distill.teacher_targets).")
    parser.add_argument("--teacher", required=True, help="teacher checkpoint")
    parser.add_argument("--config", default=None, help="the students' experiment YAML")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, help="cache directory")
    parser.add_argument("--epochs", type=int, default=None, help="epochs to cache (default train.epochs)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="storage precision (float16 halves the disk, see the module docstring)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        built = build_teacher_targets(args.teacher, cfg, args.out, epochs=args.epochs, batch_size=args.batch_size,
                                      device=args.device, progress=not args.no_progress, dtype=args.dtype)
    except PosedistillError as exc:
        raise SystemExit(f"error: {exc}") from None
    if isinstance(built, WarpedTargets):
        print(f"warped teacher targets {args.out}: {built.shape[0]} people, heatmaps {built.shape[2]} x "
              f"{built.shape[3]} of a {built.input_size} crop")
    else:
        print(f"teacher cache {args.out}: {built.epochs_done()} epochs x {built.num_samples} samples")


if __name__ == "__main__":
    main()
