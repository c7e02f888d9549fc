"""``posedistill profile``: parameters, GMACs and CPU latency of models."""

from __future__ import annotations

from pathlib import Path

import click

from ..io import atomic_write_json
from ..bench.profiling import profile_models
from ..models import DEFAULT_DEPTH
from ..models.pretrained import shipped_pair


def format_profile_table(rows: list[dict]) -> str:
    """Plain-text table of profile rows."""
    head = f"{'model':<14}{'stacks':>7}{'chan':>6}{'params(M)':>11}{'GMACs':>9}{'latency(ms)':>13}{'input':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lat = "-" if r["latency_ms"] is None else f"{r['latency_ms']:.1f}"
        lines.append(
            f"{r['name']:<14}{r['stacks']:>7}{r['channels']:>6}{r['params'] / 1e6:>11.2f}{r['gmacs']:>9.2f}"
            f"{lat:>13}{r['input_size']:>7}"
        )
    return "\n".join(lines)


@click.command()
@click.option("--models", "models", default=None,
              help="Comma-separated model names (e.g. hg8_256,hg4_128,hg2_64_dw); default: the teacher and student "
                   "the package ships, at their input size and hourglass depth.")
@click.option("--input-size", type=int, default=None, help="Square input side (multiple of 64; default: the shipped "
                                                             "pair's without --models, else 256).")
@click.option("--depth", type=int, default=None, help="Hourglass depth (default: the shipped pair's without --models, "
                                                        "else 4).")
@click.option("--num-joints", type=int, default=14, show_default=True, help="Heatmaps per stack.")
@click.option("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice).")
@click.option("--repeats", type=int, default=10, show_default=True, help="Timed calls (median reported).")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed calls before timing.")
@click.option("--no-latency", is_flag=True, help="Skip timing (parameters and GMACs only).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the rows as a JSON list to this file.")
def profile(models: str | None, input_size: int | None, depth: int | None, num_joints: int, threads: int | None,
            repeats: int, warmup: int, no_latency: bool, json_path: Path | None) -> None:
    """Parameters, GMACs and batch-1 CPU latency of models.

    GMACs are multiply-accumulates x 1e-9 (what Hourglass papers call GFLOPs), counted by
    torch.utils.flop_counter.FlopCounterMode (FLOPs / 2). Latency: median over --repeats calls after
    --warmup calls, batch 1, eager PyTorch on the CPU.
    """
    if models is None:
        shipped = shipped_pair()
        names = [shipped["teacher"].model, shipped["student"].model]
        input_size = input_size or shipped["student"].input_size
        depth = depth or shipped["student"].depth
    else:
        names = [n.strip() for n in models.split(",") if n.strip()]
    if not names:
        raise click.BadParameter("give at least one model name", param_hint="--models")
    rows = profile_models(names, input_size=input_size or 256, depth=depth or DEFAULT_DEPTH, num_joints=num_joints,
                          threads=threads, repeats=repeats, warmup=warmup, latency=not no_latency)
    click.echo(format_profile_table(rows))
    if len(rows) == 2:
        a, b = rows[1], rows[0]
        line = f"{a['name']}/{b['name']}: params {a['params'] / b['params']:.3f}, GMACs {a['gmacs'] / b['gmacs']:.3f}"
        if a["latency_ms"] is not None:
            line += f", latency {a['latency_ms'] / b['latency_ms']:.3f}"
        click.echo(line)
    if json_path is not None:
        atomic_write_json(json_path, rows)
        click.echo(f"wrote {json_path}")
