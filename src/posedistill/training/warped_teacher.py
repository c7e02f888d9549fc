"""Warped teacher targets: the FPD teacher runs once on each person's own crop; every epoch, its heatmaps follow
the sample's augmentation by a warp instead of the teacher running again.

The paper's scheme (``distill.teacher_targets: augmented``, :class:`~posedistill.training.teachers.OnlineTeacher`
or the per-epoch :mod:`~posedistill.training.teacher_cache`) runs the teacher on every augmented crop of every
epoch. On a CPU that costs several times the student's own step, and a teacher with a larger input than the
student only sees the student's crop upsampled. With ``distill.teacher_targets: warped`` the teacher sees each
training person once, in its plain crop at its *own* input size, from the original photo (mirrored too with
``distill.teacher_flip``). An augmented sample's targets are those heatmaps carried into its crop by the affine map
between the two crops (rotation, scale, shift, half-body box, negative window and mirror, joints swapped left/right
on a mirror), one batched ``grid_sample``. The teacher does not see the colour jitter or erasing; outside its crop
its heatmaps are zero.

Layout of a directory::

    meta.json      format, teacher (path, sha256, arch, input size), joint set, data (dataset, split, limit,
                   skip_bad, records fingerprint, N), flip, amp, storage dtype, shape
    heatmaps.npy   N x K x h x w: the teacher's final-stack heatmaps of person i's plain crop (memory-mappable)
    matrices.npy   N x 2 x 3: person i's original-image -> teacher-crop matrix

The arrays are written to temporary files and renamed into place, ``meta.json`` last, so a directory with a
``meta.json`` is complete. One directory serves every student of the same training people and teacher, whatever
its seed, augmentation or input size. Build with ``posedistill distill --teacher CKPT --teacher-cache DIR`` or
``python -m posedistill.training.teacher_cache`` (both build these when the config sets
``distill.teacher_targets: warped``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..config import ExperimentConfig
from ..data import PoseDataset, build_loader
from ..errors import ConfigError, DataError
from ..inference.network import predict_heatmaps
from ..io import atomic_memmap, atomic_open, atomic_write_json
from ..models import STRIDE
from ..models.pretrained import sha256_file
from ..skeleton import get_joint_set
from .precision import autocast, resolve_amp
from .teacher_files import (DTYPES, META, check_against, check_teacher_file, read_meta, records_sha256,
                            refuse_other_settings, training_dataset)
from .teacher_model import load_teacher

__all__ = ["WarpedTargets", "WarpedTeacher", "build_warped_targets", "warp_heatmaps"]

FORMAT = "posedistill-warped-teacher"
# meta keys that must equal the student's for the heatmaps to be of the student's training people
_CHECKED = ("joint_set", "dataset", "train_split", "limit", "skip_bad", "num_samples", "records_sha256",
            "teacher_flip")


def _pixels_to_unit(size: int) -> torch.Tensor:
    """3 x 3 map from crop pixels (pixel centres, the crop spanning ``[-0.5, size - 0.5]``) to ``grid_sample``'s
    ``[-1, 1]`` with ``align_corners=False``."""
    return torch.tensor([[2.0 / size, 0.0, 1.0 / size - 1.0], [0.0, 2.0 / size, 1.0 / size - 1.0],
                         [0.0, 0.0, 1.0]], dtype=torch.float64)


def _homogeneous(matrices: torch.Tensor) -> torch.Tensor:
    last = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(matrices.shape[0], 1, 3)
    return torch.cat([matrices.to(torch.float64), last], dim=1)


def warp_heatmaps(heatmaps: torch.Tensor, source_matrices: torch.Tensor, source_size: int,
                  target_matrices: torch.Tensor, target_size: int, heatmap_size: int,
                  flipped: torch.Tensor | None = None, flip_index: list[int] | tuple[int, ...] | None = None
                  ) -> torch.Tensor:
    """Carry heatmaps from one crop of each photo into another.

    Args:
        heatmaps: N x K x h x w heatmaps of the source crops (any resolution: a heatmap spans its crop).
        source_matrices: N x 2 x 3 original-image -> source-crop pixel matrices; ``source_size`` the crop side.
        target_matrices: N x 2 x 3 original-image -> target-crop matrices (a mirror included); ``target_size``.
        heatmap_size: side of the returned heatmaps (the target crop's heatmap grid).
        flipped, flip_index: targets that are mirrored take their joint ``j`` from source channel
            ``flip_index[j]`` (left and right swapped, as :class:`~posedistill.data.PoseDataset` does).

    Returns:
        N x K x heatmap_size x heatmap_size float32, bilinear, zero outside the source crop.
    """
    n, k = heatmaps.shape[:2]
    src, dst = _homogeneous(source_matrices), _homogeneous(target_matrices)
    # target unit square -> target crop pixels -> original image -> source crop pixels -> source unit square
    theta = _pixels_to_unit(source_size) @ src @ torch.linalg.inv(dst) @ torch.linalg.inv(_pixels_to_unit(target_size))
    if flipped is not None and flip_index is not None and bool(flipped.any()):
        order = torch.arange(k).expand(n, k)
        mirrored = torch.as_tensor(flip_index, dtype=torch.int64).expand(n, k)
        channels = torch.where(flipped.reshape(n, 1).bool(), mirrored, order).to(heatmaps.device)
        heatmaps = heatmaps.gather(1, channels[:, :, None, None].expand_as(heatmaps))
    grid = F.affine_grid(theta[:, :2].to(torch.float32).to(heatmaps.device), [n, k, heatmap_size, heatmap_size],
                         align_corners=False)
    return F.grid_sample(heatmaps.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _meta(cfg: ExperimentConfig, dataset: PoseDataset, joint_set: str) -> dict[str, Any]:
    """The student-side part of ``meta.json``: which people the heatmaps are of, and how the teacher saw them."""
    return {"joint_set": joint_set, "dataset": cfg.data.dataset, "data_root": str(cfg.data.root),
            "train_split": cfg.data.train, "limit": cfg.data.limit, "skip_bad": cfg.data.skip_bad,
            "num_samples": len(dataset), "records_sha256": records_sha256(dataset),
            "teacher_flip": cfg.distill.teacher_flip, "amp": cfg.train.amp}


class WarpedTargets:
    """Read side of a warped-target directory (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.meta = read_meta(self.root, FORMAT, build_hint="posedistill distill --teacher CKPT --set "
                                                            "distill.teacher_targets=warped")
        try:
            self.heatmaps = np.load(self.root / "heatmaps.npy", mmap_mode="r")
            self.matrices = torch.from_numpy(np.load(self.root / "matrices.npy"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.root}: unreadable warped teacher targets ({exc})") from exc
        if tuple(self.heatmaps.shape) != tuple(self.meta["shape"]) or self.matrices.shape != (self.shape[0], 2, 3):
            raise DataError(f"{self.root}: warped teacher targets do not have the shape of their meta.json "
                            f"{self.meta['shape']}")
        self.flip_index = get_joint_set(self.meta["joint_set"]).flip_index

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(N, K, h, w)``: one teacher heatmap stack per training person."""
        return tuple(self.meta["shape"])  # type: ignore[return-value]

    @property
    def input_size(self) -> int:
        """The teacher's crop side."""
        return int(self.meta["teacher"]["input_size"])

    def validate(self, cfg: ExperimentConfig, *, teacher: str | Path | None = None,
                 dataset: PoseDataset | None = None) -> None:
        """ConfigError naming the first difference when these are not the heatmaps of ``cfg``'s training people
        (joint set, data, records) as the teacher ``cfg`` asks for sees them (flip; ``distill.teacher_input_size``
        when set), or, given ``teacher``, not of that checkpoint."""
        if dataset is None:
            dataset, joint_set = training_dataset(cfg)
        else:
            joint_set = dataset.joint_set.name
        check_against(self.root, self.meta, _meta(cfg, dataset, joint_set), _CHECKED,
                      subject="warped teacher targets do not", there="there")
        own = cfg.distill.teacher_input_size
        if own and own != self.input_size:
            raise ConfigError(f"{self.root}: warped teacher targets are of a teacher at input {self.input_size}, "
                              f"the config's distill.teacher_input_size is {own}")
        if teacher is not None:
            check_teacher_file(self.root, self.meta, teacher, subject="warped teacher targets were")

    def targets(self, indices: torch.Tensor, matrices: torch.Tensor, input_size: int, heatmap_size: int,
                flipped: torch.Tensor | None = None) -> torch.Tensor:
        """The teacher's heatmaps of people ``indices`` carried into their augmented crops (``matrices``,
        original -> crop, side ``input_size``; ``flipped`` marks mirrored crops) on a ``heatmap_size`` grid."""
        idx = np.asarray(indices.cpu(), dtype=np.int64).reshape(-1)
        source = torch.from_numpy(np.asarray(self.heatmaps[idx], dtype=np.float32))
        return warp_heatmaps(source, self.matrices[idx], self.input_size, matrices.cpu(), input_size, heatmap_size,
                             flipped.cpu() if flipped is not None else None, self.flip_index)


@dataclass
class WarpedTeacher:
    """The trainer's teacher (:class:`~posedistill.training.teachers.Teacher`) of ``distill.teacher_targets:
    warped``: each batch's targets from :class:`WarpedTargets`."""

    store: WarpedTargets
    input_size: int
    heatmap_size: int
    teacher_path: str | Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def heatmaps(self, epoch: int, batch: dict[str, Any]) -> torch.Tensor:
        hm = self.store.targets(batch["index"], batch["matrix"], self.input_size, self.heatmap_size,
                                batch.get("flipped"))
        return hm.to(self.device, non_blocking=True)

    def run_fields(self) -> dict[str, str | None]:
        teacher = self.teacher_path if self.teacher_path is not None else self.store.meta["teacher"]["path"]
        return {"teacher": str(teacher), "teacher_cache": str(self.store.root)}


def build_warped_targets(teacher_ckpt: str | Path, cfg: ExperimentConfig, root: str | Path, *,
                         batch_size: int | None = None, device: str | None = None, progress: bool = True,
                         dtype: str = "float32") -> WarpedTargets:
    """Run the frozen teacher (eval mode, ``cfg.train.amp`` autocast, mirrored too with ``distill.teacher_flip``)
    once on the plain crop of each training person of ``cfg`` at the teacher's own input size, and store its
    final-stack heatmaps and crop matrices in ``root``. A complete directory for the same teacher and people is
    left as it is; one for others is refused (ConfigError)."""
    if dtype not in DTYPES:
        raise ConfigError(f"warped teacher targets: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    root = Path(root)
    dataset, joint_set = training_dataset(cfg)
    loaded = load_teacher(teacher_ckpt, cfg, joint_set=joint_set, stride=STRIDE)
    tmeta = loaded.meta
    meta = {"format": FORMAT, "version": 1,
            "teacher": {"path": str(teacher_ckpt), "sha256": sha256_file(teacher_ckpt),
                        "arch": loaded.checkpoint["arch"], "input_size": tmeta.input_size},
            **_meta(cfg, dataset, joint_set), "dtype": dtype,
            "shape": [len(dataset), tmeta.num_joints, tmeta.input_size // tmeta.stride,
                      tmeta.input_size // tmeta.stride]}
    if (root / META).is_file():
        existing = WarpedTargets(root)
        refuse_other_settings(root, existing.meta, meta, ("teacher", *_CHECKED, "dtype", "shape"),
                              what="warped teacher targets")
        return existing
    root.mkdir(parents=True, exist_ok=True)
    plain = PoseDataset(dataset.records, meta=tmeta, train=False, skip_bad=dataset.skip_bad, check_images=False)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = loaded.module.to(dev).eval()
    flip_index = tuple(get_joint_set(joint_set).flip_index) if cfg.distill.teacher_flip else None
    amp = resolve_amp(cfg.train.amp, dev)
    loader = build_loader(plain, batch_size=batch_size or max(cfg.train.batch_size, 16), shuffle=False,
                          num_workers=cfg.data.workers)
    matrices = np.zeros((len(plain), 2, 3), dtype=np.float64)
    with atomic_memmap(root / "heatmaps.npy", dtype, meta["shape"]) as out:
        with tqdm(total=len(plain), desc="warped teacher targets", unit="img", disable=not progress,
                  dynamic_ncols=True) as bar:
            for batch in loader:
                with torch.inference_mode(), autocast(amp, dev):
                    hm = predict_heatmaps(model, batch["image"].to(dev), flip_index=flip_index)
                index = batch["index"].numpy()
                out[index] = hm.float().cpu().numpy().astype(out.dtype)
                matrices[index] = batch["matrix"].numpy()
                bar.update(len(index))
    with atomic_open(root / "matrices.npy") as handle:
        np.save(handle, matrices)
    atomic_write_json(root / "meta.json", meta)  # last: a directory with a meta.json is complete
    return WarpedTargets(root)
