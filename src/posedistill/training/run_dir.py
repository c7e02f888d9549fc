"""The run directory of :class:`~posedistill.training.Trainer`: its paths, its log, its checkpoints' dict and its
manifest::

    run_dir/config.yaml   resolved config (with the run's teacher / init / unlabeled / cache paths)
    run_dir/log.csv       one row per epoch (rewritten atomically from the checkpoint's history)
    run_dir/tb/           TensorBoard events
    run_dir/last.pt       checkpoint after every epoch (atomic: temp file + rename)
    run_dir/best.pt       checkpoint with the best validation PCK
    run_dir/snapshot.pt   slim copy of last.pt (weights, epoch, history, schedule; no optimiser state), small
                          enough to keep in git: ``--resume`` falls back to it when last.pt is lost
    run_dir/metrics.json  final summary
    run_dir/run.json      the command lines that started and resumed the run, with software versions

``run.json`` is ``{"format": "posedistill-run", "version": 1, "invocations": [INVOCATION, ...]}``, one
invocation (:func:`posedistill.provenance.invocation`) per start of the run: the first started it, later ones
resumed it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from tqdm import tqdm

from ..errors import ConfigError, DataError
from ..io import atomic_write_json, atomic_write_text
from ..models import DEFAULT_DEPTH
from ..models.checkpoint import standalone_weights
from ..models.meta import CHECKPOINT_KEY, ModelMeta
from ..provenance import invocation

__all__ = ["RunPaths", "LOG_FIELDS", "write_log", "format_epoch_row", "arch_record", "run_checkpoint", "snapshot",
           "RUN_FILE", "record_run_start", "read_run_manifest", "read_run_config", "check_resumed_config",
           "started_by"]

RUN_FILE = "run.json"
RUN_FORMAT = "posedistill-run"
LOG_FIELDS = ["epoch", "lr", "loss", "loss_gt", "loss_kd", "samples_per_s", "epoch_time_s", "skipped_batches",
              "val_pck", "val_auc", "param_spread", "amp"]


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def last(self) -> Path:
        return self.root / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "best.pt"

    @property
    def log(self) -> Path:
        return self.root / "log.csv"

    @property
    def snapshot(self) -> Path:
        return self.root / "snapshot.pt"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"


def write_log(path: Path, history: list[dict]) -> None:
    """``log.csv``: one row per epoch of ``history`` (the :data:`LOG_FIELDS`), written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in LOG_FIELDS})
    atomic_write_text(path, buf.getvalue())


def arch_record(name: str, num_joints: int, depth: int) -> dict[str, Any]:
    """The builder arguments a checkpoint stores (``depth`` only when it is not the default, so that checkpoints of
    default models keep their old form)."""
    arch: dict[str, Any] = {"name": name, "num_joints": num_joints}
    if depth != DEFAULT_DEPTH:
        arch["depth"] = depth
    return arch


def run_checkpoint(*, meta: ModelMeta, arch: dict[str, Any], config: dict[str, Any], model: nn.Module,
                   optimizer: Any, scheduler: Any, epoch: int, history: list[dict], best: float) -> dict[str, Any]:
    """The dict of ``last.pt`` / ``best.pt`` (layout: :mod:`posedistill.models.checkpoint`). ``joint_set``,
    ``input_size`` and ``sigma`` repeat the meta record's values for readers of older files."""
    return {
        "arch": arch,
        "joint_set": meta.joint_set,
        "input_size": meta.input_size,
        "sigma": meta.sigma,
        CHECKPOINT_KEY: meta.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "rng": {"torch": torch.get_rng_state()},
        "config": config,
        "history": history,
        "best_val_pck": best,
        "metrics": history[-1] if history else {},
    }


def snapshot(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``last.pt`` less the optimiser state: what ``snapshot.pt`` keeps."""
    return {**{k: v for k, v in ckpt.items() if k != "optimizer"}, "model": standalone_weights(ckpt["model"])}


def read_run_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    """``run_dir/run.json``, or None for a run made before manifests existed; DataError if it is malformed."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable run manifest ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT or not isinstance(data.get("invocations"), list):
        raise DataError(f"{path}: not a posedistill run manifest")
    return data


def read_run_config(path: str | Path) -> dict[str, Any]:
    """A run directory's ``config.yaml`` as the engine wrote it (the resolved settings and a ``run`` section);
    ConfigError naming the file when it is unreadable or not a mapping."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: unreadable run config ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a run config (expected a mapping of sections)")
    return data


def check_resumed_config(path: Path, cfg: Any) -> None:
    """Resuming: the run's own ``config.yaml`` (``path``) must ask for the model and input size this resume
    trains with ``cfg`` (one edited by hand is refused, and left as it is); other differences (the run inputs
    aside) are named in a notice."""
    if not path.is_file():
        return
    saved = read_run_config(path)

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        return {k: v for key, value in d.items() if key != "run"
                for k, v in (flat(value, f"{prefix}{key}.") if isinstance(value, dict)
                             else {f"{prefix}{key}": value}).items()}

    was, now = flat(saved), flat(cfg.to_dict())
    changed = [k for k in now if k in was and was[k] != now[k]]
    fixed = [k for k in ("model.name", "model.depth", "data.input_size") if k in changed]
    if fixed:
        raise ConfigError(f"{path} asks for {', '.join(f'{k}={was[k]}' for k in fixed)}, this resume for "
                          f"{', '.join(f'{k}={now[k]}' for k in fixed)}: a run keeps its model and input size "
                          "(start a new run, with --init to begin from its weights)")
    if changed:
        tqdm.write(f"notice: resuming with settings that differ from {path} ({', '.join(changed)}); it is "
                   "rewritten with them")


def format_epoch_row(row: dict[str, Any]) -> str:
    """One line summing up an epoch of the history (what the CLI prints after every epoch)."""
    parts = [f"epoch {row['epoch']}", f"loss {row['loss']:.3e}", f"{row['samples_per_s']:.1f} samples/s"]
    if "val_pck" in row:
        parts.append(f"val PCK@0.2 {row['val_pck']:.1f}")
    return " | ".join(parts)


def record_run_start(run_dir: str | Path, command: Sequence[str] | None, *, resume: bool) -> dict[str, Any]:
    """Add this start of the run to ``run_dir/run.json`` (a fresh run starts a new manifest); atomic."""
    previous = read_run_manifest(run_dir) if resume else None
    manifest = previous or {"format": RUN_FORMAT, "version": 1, "invocations": []}
    manifest["invocations"].append(invocation(command, resume=resume))
    atomic_write_json(Path(run_dir) / RUN_FILE, manifest)
    return manifest


def started_by(manifest: dict[str, Any] | None) -> str | None:
    """The command that started a run (its first invocation), None when unknown."""
    if not manifest or not manifest["invocations"]:
        return None
    return manifest["invocations"][0].get("command")
