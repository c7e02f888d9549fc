"""Figures of the report: PCK against GFLOPs and against CPU latency with the Pareto front, and validation
curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..io import atomic_open
from .runs import RunEntry, entries_by_dir, run_of

__all__ = ["pareto_front", "plot_pareto", "plot_curves", "curve_starts"]

def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (cost, accuracy) points, whether each is on the Pareto front: no other point has cost <= and
    accuracy >= with at least one strict (lower cost and higher accuracy are better)."""
    flags = []
    for i, (c, a) in enumerate(points):
        dominated = any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for j, (c2, a2) in enumerate(points) if j != i)
        flags.append(not dominated)
    return flags



def _axis(entries: list[RunEntry], cost: str) -> tuple[list[RunEntry], list[bool]]:
    usable = [e for e in entries if getattr(e, cost) is not None and e.headline_pck()[0] is not None]
    points = [(float(getattr(e, cost)), float(e.headline_pck()[0])) for e in usable]  # type: ignore[arg-type]
    return usable, pareto_front(points)


def plot_pareto(entries: list[RunEntry], cost: str, path: Path, *, command: str) -> list[str]:
    """Scatter PCK vs ``cost`` ("gmacs" or "latency_ms") with the Pareto front; returns the front's labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    usable, front = _axis(entries, cost)
    kinds = sorted({e.headline_pck()[1] for e in usable})
    fig, ax = plt.subplots(figsize=(7.0, 4.8), dpi=130)
    for e, on in zip(usable, front):
        x, y = float(getattr(e, cost)), float(e.headline_pck()[0])  # type: ignore[arg-type]
        marker = "s" if e.binarized else ("*" if e.mode == "distill" else "o")
        ax.scatter([x], [y], marker=marker, s=70 if on else 40, color="tab:red" if on else "tab:blue",
                   edgecolors="black", linewidths=0.5, zorder=3)
        ax.annotate(e.label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    pts = sorted((float(getattr(e, cost)), float(e.headline_pck()[0])) for e, on in zip(usable, front) if on)
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "--", color="tab:red", lw=1, zorder=2,
                label="Pareto front")
    for marker, name in (("o", "trained from ground truth"), ("*", "FPD student"), ("s", "binarized")):
        ax.scatter([], [], marker=marker, color="white", edgecolors="black", label=name)
    if usable and min(float(getattr(e, cost)) for e in usable) > 0:
        ax.set_xscale("log")
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(plain)
        lo, hi = (f(float(getattr(e, cost)) for e in usable) for f in (min, max))
        # label the minor ticks only when the axis spans less than a decade (else they overlap)
        ax.xaxis.set_minor_formatter(plain if hi / lo < 10 else matplotlib.ticker.NullFormatter())
        ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("GFLOPs (GMACs), log scale" if cost == "gmacs" else "CPU latency, batch 1 (ms), log scale")
    ax.set_ylabel("PCK@0.2 (%)" + (f", {kinds[0]}" if len(kinds) == 1 else f" ({' / '.join(kinds)})"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("PCK@0.2 vs " + ("GFLOPs" if cost == "gmacs" else "CPU latency"), fontsize=10)
    fig.text(0.01, 0.005, f"made by: {command}", fontsize=5.5, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)
    return [e.label for e, on in zip(usable, front) if on]


def plot_curves(entries: list[RunEntry], path: Path, *, command: str) -> list[str]:
    """Validation PCK@0.2 per epoch of every run with a training history, one line each; returns their labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [e for e in entries if len(e.curve) >= 1]
    if not runs:
        return []
    starts = curve_starts(runs)
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.get_cmap("tab10").colors
    for i, e in enumerate(runs):
        epochs, pck = zip(*e.curve)
        start, parent = starts.get(e.label, (0, None))
        label = f"{e.label} ({e.model}" + (f", from epoch {start} of {parent})" if parent else ")")
        ax.plot([n + start for n in epochs], pck, marker="." if len(epochs) < 40 else None, label=label,
                color=colours[i % len(colours)], linestyle=("-", "--", ":")[i // len(colours) % 3])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation PCK@0.2 (%)")
    ax.set_title("Validation PCK@0.2 per epoch", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.text(0.01, 0.005, command[:160], fontsize=5, color="0.4")
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return [e.label for e in runs]


def curve_starts(entries: list[RunEntry]) -> dict[str, tuple[int, str]]:
    """For each run started with ``--init`` from another run in ``entries``: (the epoch of that run's best
    validation PCK, i.e. of its ``best.pt``, that run's label), so its curve continues where the other left off."""
    by_dir = entries_by_dir(entries)
    starts = {}
    for e in entries:
        parent = by_dir.get(run_of(e.init) or "")
        if parent is not None and parent is not e and parent.curve:
            starts[e.label] = (max(parent.curve, key=lambda point: point[1])[0], parent.label)
    return starts
