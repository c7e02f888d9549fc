"""``posedistill report``: results tables and PCK-vs-cost plots (with the Pareto front) from run directories."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("docs"), show_default=True,
              help="Where results.md, results.json, pck_vs_gflops.png and pck_vs_latency.png go.")
@click.option("--no-latency", is_flag=True, help="Do not time models whose latency is not stored (faster).")
@click.option("--threads", type=int, default=None, help="CPU threads when timing models (default: torch's).")
@click.option("--repeats", type=int, default=10, show_default=True, help="Timed calls per model.")
def report(run_dirs, out, no_latency, threads, repeats):
    """Build OUT/results.md and plots from RUN_DIRS (config.yaml, metrics.json, eval*.json, cost.json,
    results.json); every number comes from those files."""
    from ..report.markdown import build_report

    command = shlex.join(["posedistill", *sys.argv[1:]]) if sys.argv[1:2] == ["report"] else None
    summary = build_report(run_dirs, out, command=command, latency=not no_latency, threads=threads,
                           repeats=repeats)
    for name, front in summary["pareto_front"].items():
        click.echo(f"{out / name}: Pareto front {', '.join(front) if front else 'empty'}")
    click.echo(f"wrote {out / 'results.md'}")
