"""Experiment configuration: typed dataclasses loaded from YAML, overridable by dotted keys, validated.

A config file has the sections below (every key optional; defaults follow the FPD paper's recipe: input 256,
heatmaps 64, sigma 2, rotation 30, scale 0.25, flip, Adam lr 2.5e-4 with step decay, alpha 0.5)::

    name: fpd_student
    seed: 0
    model: {name: hg4_128}
    data: {dataset: lspet, root: ../shared/data/lspet, train: train, val: val, input_size: 256, sigma: 2.0,
           augment: {scale_factor: 0.25, rotation: 30, rotation_prob: 0.6, flip: true, color_jitter: 0.2,
                     shift_factor: 0.0, negative_prob: 0.0, half_body_prob: 0.0, erase_prob: 0.0}}
    optim: {optimizer: adam, lr: 2.5e-4, weight_decay: 0.0}
    schedule: {kind: step, milestones: [60, 90], gamma: 0.1, warmup_epochs: 0}
    loss: {fg_weight: 0.0}
    train: {epochs: 100, batch_size: 16, val_every: 1, amp: none}
    distill: {alpha: 0.5, mask_distillation: true, teacher_norm: none, teacher_flip: false, teacher_input_size: 0,
             teacher_targets: augmented, unlabeled_box: finder}
    run: {teacher: null, teacher_cache: null, init: null, unlabeled: null, control: null}

``run`` holds the run's inputs (the CLI's ``--teacher``, ``--init``, ...; :class:`RunConfig`): the engine writes
the resolved config with them (and ``run.mode``) into the run's ``config.yaml``, which therefore loads as it is
and reruns the run. ``run.control`` names the run an FPD run is compared with; ``posedistill report`` reads it.

The augmentation keys directly under ``data:`` (``scale_factor``, ``rotation``, ``flip``, ``color_jitter``: the
layout of configs and runs written before ``data.augment`` existed) are still read, into ``data.augment``.

``data.augment.negative_prob`` turns that share of the training samples into windows of the photo without the
person, with all-zero targets (see :class:`~posedistill.data.PoseDataset`).

Relative ``data.root`` paths are resolved against the current directory first, then the config file's folder.

A file may start from another: ``base: teacher.yaml`` (relative to the file's folder) takes that config's sections
and lays this file's keys over them (mappings merged key by key), so a student that differs from its teacher in
the model alone says only that. A run's ``config.yaml`` is the resolved config, without ``base``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .data.readers import DATASET_KINDS
from .data.transforms import AugmentConfig
from .errors import ConfigError
from .models import DEFAULT_DEPTH, STRIDE, resolve_name

__all__ = [
    "ModelConfig", "DataConfig", "OptimConfig", "ScheduleConfig", "LossConfig", "TrainConfig", "DistillConfig",
    "RunConfig",
    "ExperimentConfig", "load_config", "read_config_file", "merge_config", "apply_overrides", "config_from_dict",
]


@dataclass
class ModelConfig:
    name: str = "hg4_128"
    depth: int = DEFAULT_DEPTH  # hourglass recursion depth (3 at 128 input keeps Newell's 4x4 lowest level)


@dataclass
class DataConfig:
    dataset: str = "lspet"  # a key of posedistill.data.READERS: lsp | lspet | mpii | coco | json
    root: str = "../shared/data/lspet"
    train: str = "train"  # a named split of the dataset, or an image-number range such as "1-6500"
    val: str | None = "val"  # None or "": no validation
    input_size: int = 256
    sigma: float = 2.0
    sigma_start: float = 0.0  # > 0: ground-truth sigma starts here and moves linearly to `sigma` over sigma_epochs
    sigma_epochs: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # scale_factor, rotation, rotation_prob, ...
    workers: int = 2
    skip_bad: bool = False
    limit: int = 0  # use only the first N training records (0: all); for smoke tests


@dataclass
class OptimConfig:
    optimizer: str = "adam"  # adam | adamw (decoupled weight decay) | rmsprop | sgd
    lr: float = 2.5e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # rmsprop and sgd only


@dataclass
class ScheduleConfig:
    kind: str = "step"  # step: lr *= gamma at each milestone | cosine: cosine decay to min_lr_ratio * lr
    milestones: list[int] = field(default_factory=lambda: [60, 90])  # epochs at which lr *= gamma (step)
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up from 0 over this many epochs (per iteration)
    min_lr_ratio: float = 0.0  # cosine: final lr as a fraction of optim.lr


@dataclass
class LossConfig:
    fg_weight: float = 0.0  # heatmap MSE pixel weight 1 + fg_weight * target (0: the plain MSE of the paper)


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 16
    val_every: int = 1
    amp: str = "none"  # none | bf16 | fp16 (fp16 on CUDA only) | auto (bf16 where the hardware has it)
    channels_last: bool = False
    nonfinite: str = "stop"  # stop | skip: what to do with a NaN/Inf loss or gradient
    flip_test: bool = True  # flip test in validation
    # host syncs (finite checks, loss sums, progress) every N steps: N > 1 lets a GPU run ahead of the host
    # (measured on an H100: the engine ran hg8_256 at 0.68 of the rate of steps without syncs); needs
    # nonfinite=stop and no fp16 loss scaling; a NaN/Inf is then caught at the next check, still before last.pt
    sync_every: int = 1


@dataclass
class DistillConfig:
    alpha: float = 0.5
    mask_distillation: bool = True
    teacher_norm: str = "none"  # "none" (the paper), "peak" (rescaled to peak 1) or "clip" (to [0, 1]); FPDLoss
    teacher_flip: bool = False  # targets: the mean of the teacher's heatmaps of the crop and of its mirror image
    # > 0: the teacher's own input size when it differs from data.input_size (the student's crop is resized to
    # it, the teacher's heatmaps back to the student's grid); 0: the teacher takes the student's input size
    teacher_input_size: int = 0
    # "augmented" (the paper): the teacher runs on each augmented crop (online, or its per-epoch cache);
    # "warped": it runs once on each person's plain crop at its own input size, and each epoch's targets are those
    # heatmaps warped by the sample's augmentation (posedistill.training.warped_teacher)
    teacher_targets: str = "augmented"
    # the crop of an unlabeled image (distill --unlabeled): "finder" (the person the shipped person finder finds,
    # padded like a labeled box) or "whole" (the whole image)
    unlabeled_box: str = "finder"


RUN_MODES = ("train", "distill")
TEACHER_TARGETS = ("augmented", "warped")


@dataclass
class RunConfig:
    """The run's inputs (the CLI's ``--teacher``, ``--teacher-cache``, ``--init``, ``--unlabeled``, ``--control``):
    part of the config, so that a run's ``config.yaml`` reloads as written and reruns the run."""

    mode: str | None = None  # train | distill: what the engine ran (written by it; a teacher or a cache decides)
    teacher: str | None = None  # teacher checkpoint (FPD)
    teacher_cache: str | None = None  # teacher heatmap cache directory (FPD without running the teacher)
    init: str | None = None  # checkpoint the model starts from
    unlabeled: str | None = None  # folder of unlabeled images (distillation term only)
    control: str | None = None  # the run directory an FPD run is compared with (the report's baseline)

    @property
    def distills(self) -> bool:
        return bool(self.teacher or self.teacher_cache)


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> ExperimentConfig:
        """Check values beyond their types; raises ConfigError naming the key."""
        resolve_name(self.model.name)
        d, o, t, r = self.data, self.optim, self.train, self.run
        checks = [
            (d.dataset in DATASET_KINDS, f"data.dataset must be one of {', '.join(DATASET_KINDS)}"),
            (d.input_size > 0 and d.input_size % 64 == 0, "data.input_size must be a positive multiple of 64"),
            (1 <= self.model.depth <= 6 and d.input_size % (STRIDE * 2 ** self.model.depth) == 0,
             f"model.depth must be in 1..6, with data.input_size a multiple of {STRIDE} * 2**depth"),
            (d.sigma > 0, "data.sigma must be > 0"),
            (d.sigma_start >= 0 and d.sigma_epochs >= 0, "data.sigma_start and data.sigma_epochs must be >= 0"),
            (d.sigma_start == 0 or d.sigma_epochs > 0, "data.sigma_start needs data.sigma_epochs > 0"),
            (d.augment.rotation <= 180, "data.augment.rotation must be in [0, 180]"),
            (d.workers >= 0 and d.limit >= 0, "data.workers and data.limit must be >= 0"),
            (o.optimizer in ("adam", "adamw", "rmsprop", "sgd"),
             "optim.optimizer must be adam, adamw, rmsprop or sgd"),
            (o.lr > 0 and o.weight_decay >= 0, "optim.lr must be > 0 and optim.weight_decay >= 0"),
            (all(m > 0 for m in self.schedule.milestones), "schedule.milestones must be positive epochs"),
            (0 < self.schedule.gamma <= 1, "schedule.gamma must be in (0, 1]"),
            (self.schedule.kind in ("step", "cosine"), "schedule.kind must be step or cosine"),
            (0 <= self.schedule.min_lr_ratio <= 1, "schedule.min_lr_ratio must be in [0, 1]"),
            (self.loss.fg_weight >= 0, "loss.fg_weight must be >= 0"),
            (t.epochs > 0 and t.batch_size > 0 and t.val_every > 0, "train.epochs, batch_size, val_every must be > 0"),
            (0 <= self.schedule.warmup_epochs < t.epochs, "schedule.warmup_epochs must be in [0, train.epochs)"),
            (t.amp in ("none", "bf16", "fp16", "auto"), "train.amp must be none, bf16, fp16 or auto"),
            (t.nonfinite in ("stop", "skip"), "train.nonfinite must be stop or skip"),
            (t.sync_every >= 1, "train.sync_every must be >= 1"),
            (t.sync_every == 1 or (t.nonfinite == "stop" and t.amp != "fp16"),
             "train.sync_every > 1 needs train.nonfinite=stop and train.amp other than fp16 (a batch can only be "
             "skipped, or an fp16 step unscaled, by a check at every step)"),
            (0 <= self.distill.alpha <= 1, "distill.alpha must be in [0, 1]"),
            (self.distill.teacher_norm in ("none", "peak", "clip"), "distill.teacher_norm must be none, peak or clip"),
            (self.distill.teacher_input_size == 0 or (self.distill.teacher_input_size > 0
                                                      and self.distill.teacher_input_size % 64 == 0),
             "distill.teacher_input_size must be 0 (the student's) or a positive multiple of 64"),
            (self.distill.unlabeled_box in ("finder", "whole"), "distill.unlabeled_box must be finder or whole"),
            (self.distill.teacher_targets in TEACHER_TARGETS, "distill.teacher_targets must be augmented or warped"),
            (not (r.unlabeled and self.distill.teacher_targets == "warped"), "distill.teacher_targets 'warped' "
             "covers the labeled training people only; drop --unlabeled or use 'augmented'"),
            (r.mode in (None, *RUN_MODES), "run.mode must be train or distill"),
            (not (r.unlabeled and r.teacher_cache), "--teacher-cache covers the labeled training split only; drop "
             "--unlabeled or the cache (run.unlabeled, run.teacher_cache)"),
            (not r.unlabeled or r.teacher, "--unlabeled needs --teacher: unlabeled images only carry the "
             "distillation term (run.unlabeled, run.teacher)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self


def _check_type(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_check_type(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if hint in (float, str) and not isinstance(value, hint):
        raise ConfigError(f"{key}: expected a {hint.__name__}, got {value!r}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown config key {where}{unknown[0]}; valid keys: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            try:
                kwargs[name] = _build(hint, value, key)
            except ConfigError as exc:  # AugmentConfig checks its own values: name the key as the file does
                raise ConfigError(str(exc).replace(hint.__name__, key)) from None
        else:
            kwargs[name] = _check_type(value, hint, key)
    return cls(**kwargs)


#: Augmentation keys that older configs put directly under ``data:``; read into ``data.augment``.
FLAT_AUGMENT_KEYS = tuple(f.name for f in dataclasses.fields(AugmentConfig))


def nest_flat_augment(data: dict[str, Any]) -> dict[str, Any]:
    """``data.<augmentation key>`` (the older flat layout) moved into ``data.augment``; a copy, the input is
    left as it is. A key given both ways is an error."""
    section = data.get("data")
    if not isinstance(section, dict) or not any(k in section for k in FLAT_AUGMENT_KEYS):
        return data
    section = dict(section)
    augment = section.get("augment") or {}
    if not isinstance(augment, dict):
        raise ConfigError(f"data.augment: expected a mapping, got {augment!r}")
    augment = dict(augment)
    for key in FLAT_AUGMENT_KEYS:
        if key in section:
            if key in augment:
                raise ConfigError(f"data.{key} and data.augment.{key} are both set; keep data.augment.{key}")
            augment[key] = section.pop(key)
    section["augment"] = augment
    return {**data, "data": section}


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Build and validate a config from a (possibly partial) nested dict (flat augmentation keys accepted)."""
    return _build(ExperimentConfig, nest_flat_augment(data), "").validate()


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML") from exc
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = value
    return data


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of sections")
    return data


def merge_config(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid onto ``base``: mappings merged key by key (recursively), any other value replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge_config(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out


def read_config_file(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The nested dict of a YAML experiment file, its ``base:`` chain resolved.

    ``base: OTHER.yaml`` (relative to the file's folder) names a config this one starts from: its sections are
    merged key by key, and this file's values win. A relative ``data.root`` that does not exist from the current
    directory is taken relative to the folder of the file that sets it.
    """
    path = Path(path)
    if path.resolve() in _chain:
        loop = " -> ".join(p.name for p in (*_chain, path))
        raise ConfigError(f"{_chain[0]}: 'base' chain loops ({loop})")
    data = nest_flat_augment(_read_yaml(path))
    section = data.get("data")
    root = section.get("root") if isinstance(section, dict) else None
    if isinstance(root, str) and not Path(root).is_absolute() and not Path(root).exists():
        candidate = path.parent / root
        if candidate.exists():
            data = {**data, "data": {**section, "root": str(candidate)}}
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base must be the path of another config file, got {base!r}")
    if not (path.parent / base).is_file():
        raise ConfigError(f"{path}: base {base} not found (it is read relative to the file's folder)")
    return merge_config(read_config_file(path.parent / base, (*_chain, path.resolve())), data)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a YAML experiment file (or defaults when ``path`` is None) with its ``base:`` chain
    (:func:`read_config_file`), apply overrides and validate."""
    data = read_config_file(path) if path is not None else {}
    apply_overrides(data, overrides or [])
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None
