"""Training engine shared by ``posedistill train`` (ground truth) and ``posedistill distill`` (FPD).

One :class:`Trainer` runs an experiment into a run directory (:mod:`posedistill.training.run_dir`: config.yaml,
log.csv, tb/, last.pt, best.pt, snapshot.pt, metrics.json, run.json).

Resuming (``resume=True``) restores model, optimiser, scheduler, epoch and RNG state from ``last.pt``; data order
and augmentation are functions of (seed, epoch, index), so a resumed run reproduces the uninterrupted one. Without
``last.pt`` it resumes from ``snapshot.pt`` with fresh optimiser moments (close, not bit-exact; a notice says so).
``train.amp: auto`` picks the precision on every start, per machine (:func:`resolve_amp`): the weights and the
optimiser state are fp32 either way, so a run resumes on a machine of the other kind.
In FPD mode the teacher runs frozen, in eval mode under ``torch.inference_mode``, on the same augmented batch as
the student (the paper's online scheme).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from ..config import ExperimentConfig, config_from_dict
from ..data import build_loader
from ..errors import CheckpointError, ConfigError, PosedistillError
from ..evaluation import evaluate_predictions, predict_dataset
from ..inference.network import PoseNetwork
from ..io import atomic_write_json, atomic_write_text, check_writable_dir
from ..models import DEFAULT_DEPTH, build_model
from ..skeleton import get_joint_set
from .builders import build_optimizer, build_scheduler, scheduler_steps_per_iteration
from .datasets import read_training_data
from .distributed import DistInfo, all_reduce_mean, barrier, cleanup, init_distributed, parameter_spread
from .losses import FPDLoss, HeatmapLoss
from .precision import autocast, resolve_amp
from .run_dir import (RunPaths, arch_record, check_resumed_config, format_epoch_row, record_run_start, run_checkpoint,
                      snapshot, write_log)
from .teachers import NoTeacher, Teacher, build_teacher

__all__ = ["Trainer", "TrainingError"]


class TrainingError(PosedistillError):
    """Training cannot go on (e.g. a non-finite loss); no checkpoint was overwritten."""


class _EpochChecks:
    """The loss sums and gradient norms of an epoch, kept on the device between checks: :meth:`check` moves them to
    the host, raises :class:`TrainingError` when one is not finite and adds the losses to :attr:`sums`."""

    def __init__(self, epoch: int, every: int) -> None:
        self.epoch, self.every = epoch, every
        self.sums = {"loss": 0.0, "gt": 0.0, "kd": 0.0}
        self.pending: dict[str, Tensor] = {}
        self.unchecked_from = 0

    def add(self, terms: dict[str, Tensor], grad_norm: Tensor) -> None:
        for k in self.sums:
            self.pending[k] = self.pending.get(k, 0) + terms[k].detach().float()
        self.pending["grad"] = self.pending.get("grad", 0) + grad_norm.detach().float()

    def error(self, what: str, it: int, value: float | None = None, where: str | None = None) -> TrainingError:
        shown = f" ({value})" if value is not None else ""
        where = where or f"iteration {it + 1}"
        return TrainingError(f"non-finite {what}{shown} at epoch {self.epoch + 1}, {where}; last.pt still holds "
                             f"epoch {self.epoch}")

    def check(self, it: int) -> None:
        if not self.pending:
            return
        values = {k: float(v) for k, v in self.pending.items()}
        self.pending.clear()
        where = (f"between iterations {self.unchecked_from + 1} and {it + 1}" if it > self.unchecked_from
                 else f"at iteration {it + 1}") + f" (checked every {self.every} steps)"
        if not math.isfinite(values.pop("grad")):
            raise self.error("gradient", it, where=where)
        if not math.isfinite(values["loss"]):
            raise self.error("loss", it, values["loss"], where=where)
        for k in self.sums:
            self.sums[k] += values[k]
        self.unchecked_from = it + 1


class Trainer:
    """Train a model from ground truth, or distill a student from a teacher checkpoint (FPD).

    The run's inputs are part of the config (``cfg.run``, :class:`~posedistill.config.RunConfig`): ``teacher``
    (given, the run is FPD distillation with ``cfg.distill.alpha``), ``teacher_cache`` (precomputed teacher
    heatmaps instead of the online teacher; ``teacher`` then optional, checked against the cache if given),
    ``init`` (checkpoint the model starts from), ``unlabeled`` (images for the distillation term only). A config
    built in Python is type-checked and validated here, as a loaded one is.

    Args:
        cfg: the experiment.
        run_dir: output directory.
        resume: continue from ``run_dir/last.pt``.
        overwrite: allow writing into a non-empty run directory without resuming.
        device: ``"cpu"``, ``"cuda"``...; default the GPU when available.
        progress: show progress bars.
        command: the command line that runs this (recorded in ``run.json``, :mod:`posedistill.training.run_dir`).
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
                 device: str | None = None, progress: bool = True, command: Sequence[str] | None = None) -> None:
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")
        self.cfg = config_from_dict(cfg.to_dict())  # types and values checked as for a YAML file
        self.paths = RunPaths(Path(run_dir))
        run = self.cfg.run
        self.teacher_path, self.init_path, self.unlabeled = run.teacher, run.init, run.unlabeled
        self.teacher_cache_path = run.teacher_cache
        self.teacher: Teacher = NoTeacher()
        self.resume, self.overwrite, self.progress = resume, overwrite, progress
        self.device_name = device
        self.command = list(command) if command is not None else None

    # ----------------------------------------------------------------------------------------------- setup
    def _prepare_run_dir(self, dist: DistInfo) -> None:
        if not dist.is_main:  # rank 0 checks and creates; the others wait at the barrier that follows
            return
        root = self.paths.root
        if self.resume:
            if not self.paths.last.is_file() and not self.paths.snapshot.is_file():
                raise ConfigError(f"{root}: nothing to resume (no last.pt or snapshot.pt)")
            check_resumed_config(self.paths.config, self.cfg)
            for stale in root.glob(".*.tmp"):  # half-written files of a killed run (atomic_open temps)
                stale.unlink(missing_ok=True)
        elif root.exists() and any(root.iterdir()) and not self.overwrite:
            raise ConfigError(f"{root}: run directory exists and is not empty; use --resume or --overwrite")
        check_writable_dir(root)

    def _build(self, dist: DistInfo) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        data = read_training_data(cfg)
        self.joint_set_name = data.joint_set
        self.model = build_model(cfg.model.name, num_joints=get_joint_set(data.joint_set).num_joints,
                                 depth=cfg.model.depth)
        self.meta = data.meta(int(self.model.stride))
        self.joint_set, self.num_joints = self.meta.joints, self.meta.num_joints
        train_set = data.train_set(meta=self.meta, unlabeled=self.unlabeled)
        self.val_set = data.val_set(meta=self.meta)
        self.val_loader = None
        if self.init_path is not None and not self.resume:  # a resumed run's weights come from last.pt
            init_model, init_ckpt = model_from_checkpoint(self.init_path, expect_arch=cfg.model.name,
                                                          expect_joint_set=self.joint_set_name)
            init_depth = int(init_ckpt["arch"].get("depth", DEFAULT_DEPTH))
            if init_depth != cfg.model.depth:
                raise ConfigError(f"{self.init_path}: --init model has depth {init_depth}, "
                                  f"the config asks for model.depth={cfg.model.depth}")
            self.model.load_state_dict(init_model.state_dict())
        memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        self.teacher = build_teacher(cfg, teacher=self.teacher_path, cache=self.teacher_cache_path,
                                     joint_set=self.joint_set_name, stride=self.meta.stride,
                                     dataset=train_set, device=dist.device, memory_format=memory_format)
        self.train_set = train_set
        self.model = self.model.to(dist.device, memory_format=memory_format)
        self.net: nn.Module = (DistributedDataParallel(self.model) if dist.enabled else self.model)
        self.loader = build_loader(train_set, batch_size=cfg.train.batch_size, shuffle=True,
                                   num_workers=cfg.data.workers, seed=cfg.seed, drop_last=True,
                                   distributed=dist.enabled)
        if len(self.loader) == 0:
            raise ConfigError(f"{len(train_set)} training samples per rank are fewer than one batch of "
                              f"{cfg.train.batch_size}; lower train.batch_size")
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, steps_per_epoch=len(self.loader))
        self.step_per_iteration = scheduler_steps_per_iteration(cfg)
        self.amp = resolve_amp(cfg.train.amp, dist.device)
        if cfg.train.amp == "auto" and self.progress and dist.is_main:
            tqdm.write(f"train.amp=auto: {self.amp} on {dist.device.type}"
                       + (f" ({torch.backends.cpu.get_cpu_capability()})" if dist.device.type == "cpu" else ""))
        self.loss_gt = HeatmapLoss(cfg.loss.fg_weight)
        self.loss_fpd = FPDLoss(cfg.distill.alpha, mask_distillation=cfg.distill.mask_distillation,
                                teacher_norm=cfg.distill.teacher_norm, fg_weight=cfg.loss.fg_weight)
        self.scaler = torch.amp.GradScaler("cuda") if (self.amp == "fp16" and dist.device.type == "cuda") else None
        autocast(self.amp, dist.device)  # fp16 without CUDA: refused here, before any epoch

    def _checkpoint(self, epoch: int, history: list[dict], best: float) -> dict[str, Any]:
        return run_checkpoint(meta=self.meta, arch=self._arch(), config=self._resolved_config(), model=self.model,
                              optimizer=self.optimizer, scheduler=self.scheduler, epoch=epoch, history=history,
                              best=best)

    def _arch(self) -> dict[str, Any]:
        return arch_record(self.cfg.model.name, self.num_joints, self.cfg.model.depth)

    def _resolved_config(self) -> dict[str, Any]:
        """The config as run: the experiment and its inputs, ``run.mode`` and what the teacher records (the
        teacher of a cache)."""
        d = self.cfg.to_dict()
        d["run"].update(mode="distill" if self.cfg.run.distills else "train", **self.teacher.run_fields())
        return d

    def _restore(self) -> tuple[int, list[dict], float]:
        path = self.paths.last if self.paths.last.is_file() else self.paths.snapshot
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as exc:  # a truncated (or refused) last.pt: the snapshot beside it
            if path == self.paths.snapshot or not self.paths.snapshot.is_file():
                raise
            tqdm.write(f"notice: {exc}")
            path = self.paths.snapshot
            ckpt = load_checkpoint(path)
        if ckpt["arch"] != self._arch() or ckpt["joint_set"] != self.joint_set_name:
            raise ConfigError(f"{path}: checkpoint is {ckpt['arch']['name']}/{ckpt['joint_set']}, the "
                              f"config asks for {self.cfg.model.name}/{self.joint_set_name}")
        if ckpt["input_size"] != self.cfg.data.input_size:
            raise ConfigError(f"{path}: checkpoint was trained at input size {ckpt['input_size']}, the config asks "
                              f"for data.input_size={self.cfg.data.input_size}; a run keeps its input size")
        self.model.load_state_dict(ckpt["model"])
        if "optimizer" in ckpt:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        else:
            tqdm.write(f"{self.paths.last} is missing or unreadable: resuming from {path} (epoch {ckpt['epoch']}) "
                       "with fresh optimiser moments; the run continues close to, not exactly as, an uninterrupted "
                       "one")
        self.scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        return int(ckpt["epoch"]), list(ckpt.get("history", [])), float(ckpt.get("best_val_pck", -1.0))

    # ------------------------------------------------------------------------------------------- training
    def _train_epoch(self, epoch: int, dist: DistInfo) -> dict[str, float]:
        """One epoch. Every iteration takes the one optimiser step of :meth:`_step`; the losses and gradient norms
        stay on the device and are checked and summed every ``train.sync_every`` iterations (1: every step, so a
        GPU never waits for the host inside a step when it is more) and at the end."""
        cfg, device = self.cfg, dist.device
        self.net.train()
        if hasattr(self.loader.sampler, "set_epoch"):
            self.loader.sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)  # type: ignore[attr-defined]
        memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        checks = _EpochChecks(epoch, cfg.train.sync_every)
        steps = skipped = samples = 0
        start = time.perf_counter()
        bar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", leave=False,
                   disable=not (self.progress and dist.is_main), dynamic_ncols=True)
        for it, batch in enumerate(bar):
            images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=memory_format)
            target = batch["target"].to(device, non_blocking=True)
            weight = batch["target_weight"].to(device, non_blocking=True)
            with autocast(self.amp, device):
                outputs = self.net(images)
                teacher_hm = self.teacher.heatmaps(epoch, {**batch, "image": images})
                if teacher_hm is not None:
                    labeled = batch["labeled"].to(device) if "labeled" in batch else None
                    terms = self.loss_fpd(outputs, target, weight, teacher_hm, labeled)
                else:
                    loss = self.loss_gt(outputs, target, weight)
                    terms = {"loss": loss, "gt": loss, "kd": torch.zeros(())}
            grad_norm = self._step(terms["loss"], checks, it)
            if grad_norm is None:  # a non-finite batch, skipped (train.nonfinite: skip, or an fp16 overflow)
                skipped += 1
                continue
            steps += 1
            samples += images.shape[0]
            checks.add(terms, grad_norm)
            if (it + 1) % cfg.train.sync_every == 0:
                checks.check(it)
                rate = samples * dist.world_size / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{checks.sums['loss'] / max(steps, 1):.2e}", samples_s=f"{rate:.1f}")
        checks.check(steps - 1 + skipped)  # the last iteration's index
        elapsed = time.perf_counter() - start
        means = [checks.sums[k] / max(steps, 1) for k in ("loss", "gt", "kd")]
        means = all_reduce_mean(means, dist)
        return {"loss": means[0], "loss_gt": means[1], "loss_kd": means[2],
                "samples_per_s": samples * dist.world_size / max(elapsed, 1e-9), "epoch_time_s": elapsed,
                "skipped_batches": skipped, "amp": self.amp}

    def _step(self, loss: Tensor, checks: _EpochChecks, it: int) -> Tensor | None:
        """The optimiser step of one batch: backward (through the fp16 loss scaler when there is one), the gradient
        norm, the step and the per-iteration schedule; returns the gradient norm, or None for a batch not stepped.

        Checked at every step (``train.sync_every`` 1), a non-finite loss or gradient stops the run
        (``train.nonfinite: stop``) or skips the batch (``skip``; an fp16 overflow is always skipped, the scaler
        lowering its scale) before the weights change. With checks every N steps a non-finite value is caught at
        the next check, still before ``last.pt`` (the config allows that only with ``stop`` and no fp16)."""
        every_step = self.cfg.train.sync_every == 1
        self.optimizer.zero_grad(set_to_none=True)
        if every_step and not torch.isfinite(loss):
            if self.cfg.train.nonfinite == "stop":
                raise checks.error("loss", it, loss.item())
            return None
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), float("inf"))
        if every_step and not torch.isfinite(grad_norm):
            if self.scaler is not None:  # fp16 overflow: the scaler skips the step and lowers its scale
                self.scaler.step(self.optimizer)
                self.scaler.update()
                return None
            if self.cfg.train.nonfinite == "stop":
                raise checks.error("gradient", it)
            self.optimizer.zero_grad(set_to_none=True)
            return None
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.step_per_iteration:
            self.scheduler.step()
        return grad_norm

    def validate(self, device: torch.device) -> dict[str, float]:
        """PCK@0.2 (flip test as configured) and AUC on the validation split."""
        assert self.val_set is not None
        if self.val_loader is None:
            self.val_loader = build_loader(self.val_set, batch_size=max(self.cfg.train.batch_size, 16),
                                           shuffle=False, num_workers=min(self.cfg.data.workers, 2))
        network = PoseNetwork(self.model, self.meta, device=device)  # the module as it is, in eval mode
        pred = predict_dataset(network, self.val_loader, flip=self.cfg.train.flip_test, progress=self.progress)
        result = evaluate_predictions(pred, self.joint_set)
        return {"val_pck": result.pck["mean"], "val_auc": result.auc}

    # --------------------------------------------------------------------------------------------- fit
    def fit(self, *, stop_after: int | None = None, on_epoch: Callable[[dict], None] | None = None,
            on_built: Callable[[Trainer], None] | None = None) -> dict[str, Any]:
        """Run the remaining epochs; returns the summary written to ``metrics.json``.

        ``stop_after``: stop after this many epochs of this call (to simulate an interruption in tests).
        ``on_epoch(row)``: called after every epoch. ``on_built(trainer)``: called once the run directory is
        checked and the model, data, teacher and losses are built, before resuming and training (to inspect
        them, or to inject a fault in tests).
        """
        dist = init_distributed(self.device_name)
        try:
            self._prepare_run_dir(dist)
            barrier(dist)
            self._build(dist)
            if on_built is not None:
                on_built(self)
            start_epoch, history, best = self._restore() if self.resume else (0, [], -1.0)
            if dist.is_main:
                atomic_write_text(self.paths.config, yaml.safe_dump(self._resolved_config(), sort_keys=False))
                record_run_start(self.paths.root, self.command, resume=self.resume)
                if history:  # a kill between last.pt and log.csv left the log an epoch behind the checkpoint
                    write_log(self.paths.log, history)
            writer = _tensorboard(self.paths.tensorboard) if dist.is_main else None
            done = 0
            for epoch in range(start_epoch, self.cfg.train.epochs):
                row: dict[str, Any] = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
                row.update(self._train_epoch(epoch, dist))
                if not self.step_per_iteration:
                    self.scheduler.step()
                row["param_spread"] = parameter_spread(self.model, dist)
                last_epoch = epoch + 1 == self.cfg.train.epochs
                if self.val_set is not None and ((epoch + 1) % self.cfg.train.val_every == 0 or last_epoch):
                    if dist.is_main:
                        row.update(self.validate(dist.device))
                    barrier(dist)
                history.append(row)
                if dist.is_main:
                    improved = "val_pck" in row and not math.isnan(row["val_pck"]) and row["val_pck"] > best
                    if improved:
                        best = row["val_pck"]
                    ckpt = self._checkpoint(epoch + 1, history, best)
                    save_checkpoint(self.paths.last, ckpt)
                    save_checkpoint(self.paths.snapshot, snapshot(ckpt))
                    if improved or (self.val_set is None and last_epoch):
                        save_checkpoint(self.paths.best, ckpt)
                    write_log(self.paths.log, history)
                    if writer is not None:
                        for key, value in row.items():
                            if key != "epoch" and isinstance(value, (int, float)) and not math.isnan(value):
                                writer.add_scalar(key, value, epoch + 1)
                        writer.flush()
                    if self.progress:
                        tqdm.write(format_epoch_row(row))
                barrier(dist)
                if on_epoch is not None:
                    on_epoch(row)
                done += 1
                if stop_after is not None and done >= stop_after:
                    break
            if writer is not None:
                writer.close()
            summary = {"run_dir": str(self.paths.root), "model": self.cfg.model.name,
                       "joint_set": self.joint_set_name, "epochs_done": len(history),
                       "best_val_pck": best if best >= 0 else None, "history": history}
            if dist.is_main:
                atomic_write_json(self.paths.metrics, summary)
            return summary
        finally:
            cleanup(dist)

def _tensorboard(path: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(path))
