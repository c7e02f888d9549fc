"""``posedistill quickstart``: the main job on the embedded data, no downloads."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default: runs/quickstart-<timestamp>).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs of the FPD adaptation over labeled + unlabeled images (default 6); the ground-truth "
                   "control takes as many steps over the labeled images.")
@click.option("--teacher", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Teacher checkpoint (default: the shipped teacher).")
@click.option("--student", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Student checkpoint to evaluate and adapt (default: the shipped student).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def quickstart(out: Path | None, epochs: int | None, teacher: Path | None, student: Path | None,
               no_progress: bool) -> None:
    """Shipped teacher and student side by side, then the student adapted by FPD with unlabeled images vs from
    the labeled images' ground truth only.

    On the embedded LSPET images, which no shipped model was trained on: evaluates the shipped teacher and
    student on 150 held-aside images (PCK@0.2, flip test) with their cost, then adapts the student to 500 other
    images of which 50 are labeled: by FPD from the teacher on all 500, and, with the same number of steps,
    from the 50 labeled images' ground truth only; and evaluates both. Prints one table; writes checkpoints,
    logs, results.md and results.json under the run directory.
    """
    from ..quickstart import QuickstartSettings, format_markdown, run_quickstart
    from . import command_line

    settings = QuickstartSettings(teacher=teacher, student=student)
    if epochs is not None:
        settings.adapt_epochs = epochs
    rows = run_quickstart(out, settings, progress=not no_progress, log=click.echo,
                          command=command_line() if out is not None else None)
    click.echo(format_markdown(rows, settings))
