"""``results.md`` and ``results.json`` of ``posedistill report RUN_DIR... --out docs/``.

:func:`build_report` reads the runs (:mod:`posedistill.report.runs`), fills in missing costs, draws the figures
(:mod:`posedistill.report.plots`) and writes ``results.md`` (cost and PCK@0.2 table with and without flip test,
the FPD students against their baselines (:mod:`posedistill.report.baselines`), per-joint tables, figures, and
the exact commands: the report's own, each run's training command and each evaluation command),
``results.json`` (everything the tables show) and the figures ``pck_vs_gflops.png``, ``pck_vs_latency.png``
(with the Pareto front: no other model is both cheaper and more accurate) and ``val_curves.png``; every figure
names the command that produced it.

The models compared follow Zhang, Zhu, Ye, "Fast Human Pose Estimation" (CVPR 2019: Hourglass teacher, students
trained from ground truth and by Fast Pose Distillation) and Bulat & Tzimiropoulos (ICCV 2017: binarized
Hourglass). GFLOPs are GMACs, the unit Hourglass papers call GFLOPs; a binarized model's binary MACs are counted
like real ones.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..data import LSPET_SPLITS, lspet_split_images
from ..io import atomic_write_json, atomic_write_text
from .baselines import distillation_sections
from .plots import plot_curves, plot_pareto
from .runs import RunEntry, fill_costs, fmt, load_runs

__all__ = ["build_report", "format_markdown"]

def _people(split: str) -> int:
    """The number of images of a named LSPET split."""
    return sum(stop - start for start, stop in LSPET_SPLITS[split])


def _short_joint(name: str) -> str:
    return name.replace("right_", "r_").replace("left_", "l_")


def format_markdown(entries: list[RunEntry], *, command: str, figures: dict[str, list[str]],
                    generated: str, curves: Sequence[str] = ()) -> str:
    """The text of ``results.md``."""
    lines = [
        "# Results",
        "",
        f"Generated {generated} by `{command}`. Every number comes from the runs' JSON files "
        "(evaluation JSON, `cost.json` / `results.json`, or `profile_models` where no cost was stored); "
        "nothing here is typed by hand. GFLOPs = GMACs (the Hourglass papers' unit); a binarized model's "
        "binary MACs are counted like real ones.",
        "",
        "## Accuracy and cost",
        "",
        f"`train set` is the run's named training split (`data.train`; on LSPET `train` is "
        f"{lspet_split_images('train')}, {_people('train'):,} people, and `train6500` "
        f"{lspet_split_images('train6500')} alone).",
        "",
        "| run | model | input | train set | training | params (M) | GFLOPs | CPU latency (ms) | PCK@0.2 flip "
        "| PCK@0.2 no flip | AUC | split | best val PCK | epochs | train time (min) |",
        "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for e in entries:
        ev = e.evals.get("flip") or e.evals.get("noflip")
        pck_flip = e.pck_mean(True) if e.evals else e.pck
        lines.append(
            f"| {e.label} | {e.model} | {fmt(e.input_size, 'd')} | {e.train_split or '-'} | {e.training} | "
            f"{fmt(e.params and e.params / 1e6, '.3f')} | "
            f"{fmt(e.gmacs, '.3f')} | {fmt(e.latency_ms, '.1f')} | {fmt(pck_flip, '.1f')} | "
            f"{fmt(e.pck_mean(False), '.1f')} | {fmt(ev and ev.get('auc'), '.1f')} | "
            f"{ev.get('split', '') if ev else ''} | {fmt(e.best_val_pck, '.1f')} | {fmt(e.epochs, 'd')} | "
            f"{fmt(e.train_minutes, '.1f')} |")
    lines += distillation_sections(entries)
    for key, title in (("flip", "with flip test"), ("noflip", "without flip test")):
        rows = [e for e in entries if key in e.evals]
        if not rows:
            continue
        names = rows[0].evals[key].get("joint_names") or [f"j{i}" for i in
                                                          range(len(rows[0].evals[key]["pck"]["per_joint"]))]
        lines += ["", f"## PCK@0.2 per joint, {title}", "",
                  "| run | " + " | ".join(_short_joint(n) for n in names) + " | mean |",
                  "| --- |" + " ---: |" * (len(names) + 1)]
        for e in rows:
            pck = e.evals[key]["pck"]
            lines.append(f"| {e.label} | " + " | ".join(fmt(v, ".1f") for v in pck["per_joint"])
                         + f" | {fmt(pck['mean'], '.1f')} |")
    lines += ["", "## Figures", ""]
    for name, front in figures.items():
        what = "GFLOPs" if "gflops" in name else "CPU latency"
        lines += [f"![PCK@0.2 vs {what}]({name})", "",
                  f"*PCK@0.2 vs {what}; made by `{command}`. Pareto front (red): "
                  f"{', '.join(front) if front else 'none'}.*", ""]
    if curves:
        lines += ["![validation PCK per epoch](val_curves.png)", "",
                  "*Validation PCK@0.2 per epoch (the engine's log.csv / metrics.json history) of "
                  + ", ".join(curves) + ".*", ""]
    lines += ["## Commands", "", "Report:", "", "```sh", command, "```", ""]
    for e in entries:
        lines += [f"**{e.label}** ({e.run_dir}; cost from {e.cost_source or 'nowhere'}):", "", "```sh",
                  *e.commands, "```", ""]
    return "\n".join(lines)


def build_report(run_dirs: Sequence[str | Path], out_dir: str | Path, *, command: str | None = None,
                 latency: bool = True, threads: int | None = None, repeats: int = 10) -> dict[str, Any]:
    """Write ``results.md``, ``results.json``, ``pck_vs_gflops.png`` and ``pck_vs_latency.png`` into
    ``out_dir``; returns the content of ``results.json``."""
    out = Path(out_dir)
    command = command or shlex.join(["posedistill", "report", *map(str, run_dirs), "--out", str(out_dir)])
    entries = load_runs(run_dirs)
    fill_costs(entries, latency=latency, threads=threads, repeats=repeats)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"pck_vs_gflops.png": plot_pareto(entries, "gmacs", out / "pck_vs_gflops.png", command=command)}
    if any(e.latency_ms is not None for e in entries):
        figures["pck_vs_latency.png"] = plot_pareto(entries, "latency_ms", out / "pck_vs_latency.png",
                                                    command=command)
    curves = plot_curves(entries, out / "val_curves.png", command=command)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    atomic_write_text(out / "results.md", format_markdown(entries, command=command, figures=figures,
                                                          generated=generated, curves=curves) + "\n")
    summary = {"command": command, "generated": generated, "pareto_front": figures,
               "runs": [{**dataclasses.asdict(e), "training": e.training,
                         "headline_pck": e.headline_pck()[0], "headline_pck_kind": e.headline_pck()[1]}
                        for e in entries]}
    atomic_write_json(out / "results.json", summary)
    return summary
