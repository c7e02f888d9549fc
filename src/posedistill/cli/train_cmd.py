"""``posedistill train`` (ground truth) and ``posedistill distill`` (Fast Pose Distillation)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ..config import load_config

_common = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Experiment YAML (see configs/); defaults apply to missing keys. With --resume and no "
                      "--config: the run's own OUT/config.yaml."),
    click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
                 help="Run directory (checkpoints, log.csv, TensorBoard, config.yaml)."),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                 help="Override a config key, e.g. --set train.epochs=5 --set data.input_size=128 (repeatable)."),
    click.option("--model", default=None, help="Shortcut for --set model.name=NAME."),
    click.option("--epochs", type=int, default=None, help="Shortcut for --set train.epochs=N."),
    click.option("--batch-size", type=int, default=None, help="Shortcut for --set train.batch_size=N."),
    click.option("--data", "data_root", default=None, help="Shortcut for --set data.root=PATH."),
    click.option("--resume", is_flag=True,
                 help="Continue exactly from OUT/last.pt (OUT/snapshot.pt if last.pt is lost or unreadable); the "
                      "model and input size cannot change."),
    click.option("--overwrite", is_flag=True, help="Allow writing into a non-empty run directory."),
    click.option("--device", default=None, help="cpu, cuda, cuda:1... (default: the GPU when available)."),
    click.option("--no-progress", is_flag=True, help="Hide progress bars."),
]


def _with_common(fn):
    for option in reversed(_common):
        fn = option(fn)
    return fn


def _config(config_path, overrides, model, epochs, batch_size, data_root, *, out=None, resume=False, **run):
    """The experiment with the command's shortcuts and its run inputs (``run.teacher`` ... from --teacher ...).
    ``--resume`` without ``--config``: the run's own ``OUT/config.yaml``, which loads as the engine wrote it."""
    sets = list(overrides)
    for key, value in (("model.name", model), ("train.epochs", epochs), ("train.batch_size", batch_size),
                       ("data.root", data_root)):
        if value is not None:
            sets.append(f"{key}={value}")
    sets += [f"run.{key}={json.dumps(str(value))}" for key, value in run.items() if value is not None]  # a string
    if resume and config_path is None and out is not None and (Path(out) / "config.yaml").is_file():
        config_path = Path(out) / "config.yaml"  # --resume alone: the run's own settings and inputs
    return load_config(config_path, sets)


def _run(cfg, out, **kw):
    from . import command_line
    from ..training import Trainer
    from ..training.run_dir import format_epoch_row

    # without progress bars (background runs, logs) still one line per epoch, flushed, from rank 0
    quiet_log = (lambda row: click.echo(format_epoch_row(row))) if (
        not kw.get("progress", True) and int(os.environ.get("RANK", "0")) == 0) else None
    summary = Trainer(cfg, out, command=command_line(), **kw).fit(on_epoch=quiet_log)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    best = summary["best_val_pck"]
    click.echo(f"done: {summary['epochs_done']} epochs in {out}" + (f", best val PCK@0.2 {best:.1f}" if best else ""))


@click.command()
@_with_common
@click.option("--init", "init", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start from this checkpoint's weights (fine-tuning, or a warm restart with a new schedule); "
                   "the optimiser and schedule start afresh.")
def train(config_path, out, overrides, model, epochs, batch_size, data_root, resume, overwrite, device, no_progress,
          init):
    """Train any model from ground-truth heatmaps (e.g. the teacher).

    Multi-GPU / multi-node: launch with torchrun, e.g.
    `torchrun --nproc_per_node 4 -m posedistill train --config configs/teacher.yaml --out runs/teacher`.
    """
    cfg = _config(config_path, overrides, model, epochs, batch_size, data_root, out=out, resume=resume, init=init)
    if cfg.run.distills:
        raise click.UsageError("the config names a teacher (run.teacher or run.teacher_cache): run it with "
                               "`posedistill distill`")
    _run(cfg, out, resume=resume, overwrite=overwrite, device=device, progress=not no_progress)


@click.command()
@_with_common
@click.option("--teacher", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Teacher checkpoint (trained with `posedistill train`); optional with a complete --teacher-cache.")
@click.option("--teacher-cache", "teacher_cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Teacher heatmap directory: built (or completed) from --teacher first when given, then used "
                   "instead of the online teacher: the per-epoch cache (same losses; posedistill.training."
                   "teacher_cache), or with distill.teacher_targets=warped the teacher's heatmaps of each person "
                   "(posedistill.training.warped_teacher).")
@click.option("--init", "init", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start the student from this checkpoint (e.g. a student trained normally).")
@click.option("--unlabeled", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of unlabeled images; only the distillation term applies to them.")
@click.option("--control", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The run this one is compared with in `posedistill report` (e.g. the same student trained from "
                   "ground truth); recorded as run.control.")
@click.option("--alpha", type=float, default=None, help="Shortcut for --set distill.alpha=A (default 0.5).")
def distill(config_path, out, overrides, model, epochs, batch_size, data_root, resume, overwrite, device,
            no_progress, teacher, teacher_cache, init, unlabeled, control, alpha):
    """Train a student by Fast Pose Distillation: alpha * MSE(student, teacher) + (1 - alpha) * MSE(student, GT)."""
    if alpha is not None:
        overrides = (*overrides, f"distill.alpha={alpha}")
    cfg = _config(config_path, overrides, model, epochs, batch_size, data_root, out=out, resume=resume,
                  teacher=teacher, teacher_cache=teacher_cache, init=init, unlabeled=unlabeled, control=control)
    if not cfg.run.distills:
        raise click.UsageError("give --teacher CKPT, --teacher-cache DIR, or both")
    run = cfg.run
    if run.teacher and run.teacher_cache and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        from ..training.teacher_cache import build_teacher_targets  # under torchrun: build them beforehand

        build_teacher_targets(run.teacher, cfg, run.teacher_cache, device=device, progress=not no_progress)
    _run(cfg, out, resume=resume, overwrite=overwrite, device=device, progress=not no_progress)
