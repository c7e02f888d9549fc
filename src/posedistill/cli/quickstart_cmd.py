"""``posedistill quickstart``: the main job on the embedded data, no downloads."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default: runs/quickstart-<timestamp>).")
@click.option("--epochs", type=int, default=None, help="Epochs for each of the three models (default 12).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def quickstart(out: Path | None, epochs: int | None, no_progress: bool) -> None:
    """Train a small teacher, a student with and one without FPD on the embedded LSPET subset, and compare.

    Prints one table: model, params, GMACs, CPU latency, PCK@0.2 on held-aside images; writes checkpoints,
    logs, results.md and results.json under the run directory.
    """
    from ..quickstart import QuickstartSettings, format_markdown, run_quickstart
    from . import command_line

    settings = QuickstartSettings()
    if epochs is not None:
        if epochs < 1:
            raise click.BadParameter("must be >= 1", param_hint="--epochs")
        settings.teacher_epochs = settings.student_epochs = epochs
    rows = run_quickstart(out, settings, progress=not no_progress, log=click.echo,
                          command=command_line() if out is not None else None)
    click.echo(format_markdown(rows, settings))
