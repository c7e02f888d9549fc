"""The FPD students against their baselines: the same model trained from ground truth, and the teacher."""

from __future__ import annotations

from typing import Any

from .runs import RunEntry, entries_by_dir, fmt, run_of

__all__ = ["distillation_sections"]

def _ground_truth_twin(entries: list[RunEntry], model: str, input_size: int | None) -> RunEntry | None:
    """The first evaluated run of ``model`` at ``input_size`` trained from ground truth, from scratch."""
    return next((g for g in entries if g.mode == "train" and g.model == model and not g.init
                 and g.input_size == input_size and g.headline_pck()[0] is not None), None)


def _ground_truth_only(entry: RunEntry | None) -> bool:
    return entry is not None and (entry.mode == "train" or (entry.mode == "distill" and entry.alpha == 0))


def _lineage_twin(entries: list[RunEntry], e: RunEntry, by_dir: dict[str, RunEntry]) -> RunEntry | None:
    """For an FPD run continued from an FPD run (``--init``), the ground-truth run of the same model, input size and
    number of epochs continued from a ground-truth run: the two lineages trained alike for equal epochs."""
    parent = by_dir.get(run_of(e.init) or "")
    if parent is None or _ground_truth_only(parent):
        return None
    return next((g for g in entries if g is not e and _ground_truth_only(g) and g.init and g.model == e.model
                 and g.input_size == e.input_size and g.epochs == e.epochs and not g.negatives
                 and _ground_truth_only(by_dir.get(run_of(g.init) or "")) and g.headline_pck()[0] is not None),
                None)


def distillation_sections(entries: list[RunEntry]) -> list[str]:
    """FPD students against their teacher and the same model trained from ground truth (same input size, from
    scratch, not binarized), and the alpha sweep per model; PCK is each entry's headline PCK."""
    by_dir = entries_by_dir(entries)
    # an alpha-0 run has no teacher term: it is the ground-truth control of the FPD runs, never an FPD run itself
    fpd = [e for e in entries if e.mode == "distill" and e.alpha != 0 and e.headline_pck()[0] is not None]
    lines: list[str] = []
    rows = []
    for e in fpd:
        teacher = by_dir.get(run_of(e.teacher) or "")
        plain = _ground_truth_twin(entries, e.model, e.input_size)
        if e.init:  # a student started from another checkpoint: compare with the same start and alpha 0
            # (as long and on the same data: a shorter fine-tune, or one with negatives, is no control)
            control = next((g for g in entries if g.mode == "distill" and g.alpha == 0 and g is not e
                            and g.model == e.model and run_of(g.init) == run_of(e.init)
                            and g.epochs == e.epochs and g.negatives == e.negatives
                            and g.headline_pck()[0] is not None), None)
            # no run trained alike for as long: no gain (the from-scratch twin trained for fewer epochs)
            plain = control or _lineage_twin(entries, e, by_dir)
        pck = e.headline_pck()[0]
        t_pck = teacher.headline_pck()[0] if teacher else None
        g_pck = plain.headline_pck()[0] if plain else None
        rows.append(f"| {e.label} | {e.training} | {fmt(g_pck, '.1f')} | {fmt(pck, '.1f')} | "
                    f"{fmt(None if g_pck is None else pck - g_pck, '+.1f')} | {fmt(t_pck, '.1f')} | "
                    f"{fmt(None if t_pck is None else t_pck - pck, '.1f')} | "
                    f"{fmt(teacher and teacher.gmacs and e.gmacs and e.gmacs / teacher.gmacs, '.3f')} |")
    if rows:
        lines += ["", "## FPD students against their baselines", "",
                  "Gain: FPD student minus the same model trained from ground truth only (same input size, from "
                  "scratch; for a student started with `--init`, the run from the same start with alpha 0, or for an "
                  "FPD run continued from an FPD run the ground-truth run continued alike from a ground-truth run: "
                  "equal epochs, ground truth only; no gain where no run was trained alike). Gap: teacher minus FPD "
                  "student. Headline PCK@0.2 (flip test where evaluated).", "",
                  "| FPD run | training | PCK, ground truth only | PCK, FPD | gain | PCK, teacher | gap to teacher "
                  "| cost / teacher |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |", *rows]
    sweeps: dict[tuple[str, Any], list[tuple[float, RunEntry]]] = {}
    for e in entries:
        if e.binarized or e.init or e.teacher_norm or e.headline_pck()[0] is None:
            continue
        if e.mode == "distill" and e.alpha is not None:
            sweeps.setdefault((e.model, e.input_size), []).append((float(e.alpha), e))
    for (model, size), points in sweeps.items():
        plain = _ground_truth_twin(entries, model, size)
        if plain is not None and all(a != 0.0 for a, _ in points):
            points.append((0.0, plain))  # alpha = 0 is ground truth only: the plain student
        if len(points) < 3:
            continue
        lines += ["", f"## Alpha sweep: {model} at {size}x{size}", "",
                  "alpha weighs the teacher's heatmaps (1 - alpha the ground truth); alpha 0 is the student trained "
                  "from ground truth only.", "",
                  "| alpha | run | PCK@0.2 flip | PCK@0.2 no flip | best val PCK |", "| ---: | --- | ---: | ---: | ---: |"]
        for alpha, e in sorted(points, key=lambda p: p[0]):
            lines.append(f"| {alpha:g} | {e.label} | {fmt(e.pck_mean(True), '.1f')} | "
                         f"{fmt(e.pck_mean(False), '.1f')} | {fmt(e.best_val_pck, '.1f')} |")
    return lines
