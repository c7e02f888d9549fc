"""The FPD students against their baselines: the control run each names (``run.control`` in its config: the same
model trained alike from ground truth only), and the teacher. Nothing is inferred from names or settings: a run
without a recorded control shows no gain."""

from __future__ import annotations

from pathlib import Path

from .runs import RunEntry, entries_by_dir, fmt, run_of

__all__ = ["distillation_sections"]

def _control_of(e: RunEntry, by_dir: dict[str, RunEntry]) -> RunEntry | None:
    """The run ``e`` names as its control (``run.control``), when it is among the report's runs."""
    return by_dir.get(str(Path(e.control).resolve())) if e.control else None


def distillation_sections(entries: list[RunEntry]) -> list[str]:
    """FPD students against their teacher and the control each run names (``run.control``: the run trained alike
    from ground truth only), and an alpha sweep per control that FPD runs of several alphas share; PCK is each
    entry's headline PCK."""
    by_dir = entries_by_dir(entries)
    # an alpha-0 run has no teacher term: it is a ground-truth control of the FPD runs, never an FPD run itself
    fpd = [e for e in entries if e.mode == "distill" and e.alpha != 0 and e.headline_pck()[0] is not None]
    lines: list[str] = []
    rows = []
    for e in fpd:
        teacher = by_dir.get(run_of(e.teacher) or "")
        control = _control_of(e, by_dir)
        pck = e.headline_pck()[0]
        t_pck = teacher.headline_pck()[0] if teacher else None
        g_pck = control.headline_pck()[0] if control else None
        rows.append(f"| {e.label} | {e.training} | {fmt(g_pck, '.1f')} | {fmt(pck, '.1f')} | "
                    f"{fmt(None if g_pck is None else pck - g_pck, '+.1f')} | {fmt(t_pck, '.1f')} | "
                    f"{fmt(None if t_pck is None else t_pck - pck, '.1f')} | "
                    f"{fmt(teacher and teacher.gmacs and e.gmacs and e.gmacs / teacher.gmacs, '.3f')} |")
    if rows:
        lines += ["", "## FPD students against their baselines", "",
                  "Gain: FPD student minus its control, the run it names (`run.control`: the same model trained "
                  "alike from ground truth only; no gain where it names none, or where that run is not in the "
                  "report). Gap: teacher minus FPD student. Headline PCK@0.2 (flip test where evaluated).", "",
                  "| FPD run | training | PCK, ground truth only | PCK, FPD | gain | PCK, teacher | gap to teacher "
                  "| cost / teacher |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |", *rows]
    sweeps: dict[str, list[tuple[float, RunEntry]]] = {}
    for e in fpd:  # runs that differ from the shared control in alpha alone (no other start, no teacher_norm)
        control = _control_of(e, by_dir)
        if control is not None and not (e.binarized or e.init or e.teacher_norm) and e.alpha is not None:
            sweeps.setdefault(control.run_dir, [(0.0, control)]).append((float(e.alpha), e))
    for points in sweeps.values():
        if len(points) < 3:
            continue
        control = points[0][1]
        lines += ["", f"## Alpha sweep: {control.model} at {control.input_size}x{control.input_size}", "",
                  "alpha weighs the teacher's heatmaps (1 - alpha the ground truth); alpha 0 is the student trained "
                  f"from ground truth only ({control.label}, the control these runs name).", "",
                  "| alpha | run | PCK@0.2 flip | PCK@0.2 no flip | best val PCK |", "| ---: | --- | ---: | ---: | ---: |"]
        for alpha, e in sorted(points, key=lambda p: p[0]):
            lines.append(f"| {alpha:g} | {e.label} | {fmt(e.pck_mean(True), '.1f')} | "
                         f"{fmt(e.pck_mean(False), '.1f')} | {fmt(e.best_val_pck, '.1f')} |")
    return lines
