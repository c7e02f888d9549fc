"""Results report: tables and accuracy-vs-cost plots from run directories, never a number typed by hand.

``posedistill report RUN_DIR... --out docs/`` gathers, for every run directory (a folder that holds only run
directories, such as a quickstart's, stands for them):

* ``run.json`` -- the command lines that started and resumed the run (:mod:`posedistill.training.run_dir`);
* ``config.yaml`` -- the resolved config the engine writes (model, input size, FPD alpha, teacher, cache...);
* ``metrics.json`` -- the engine's summary (best validation PCK, epochs);
* ``eval*.json`` -- what ``posedistill evaluate CKPT --json F`` writes (checkpoint, data, dataset, split, flip,
  dark, model meta values, pck {mean, per_joint}, auc, joint_names, the invocation); one with ``flip: true`` and one with ``flip: false`` give both
  columns;
* ``cost.json`` (optional) -- ``{params, gmacs, latency_ms, ...}`` measured elsewhere (e.g. an int8 ONNX model
  timed by ``posedistill bench``), optionally with ``note`` (shown with the training, e.g. "ONNX Runtime int8")
  and ``commands`` (listed before the evaluation commands, e.g. the export); otherwise the cost is computed with
  :func:`posedistill.bench.profiling.profile_models` for the run's model at its input size;
* ``results.json`` (optional) -- one dict of extra fields for the run (label, model, cost, note, commands).

It writes ``results.md`` (cost and PCK@0.2 table with and without flip test, per-joint tables, figures, and
the exact commands: the report's own, each run's training command and each evaluation command as recorded in
their run files; only for runs made before those files existed are they rebuilt from the config and the JSON), ``results.json`` (everything the tables show) and two figures,
``pck_vs_gflops.png`` and ``pck_vs_latency.png``, with the Pareto front (no other model is both cheaper and more
accurate) marked; every figure names the command that produced it.

The models compared follow Zhang, Zhu, Ye, "Fast Human Pose Estimation" (CVPR 2019: Hourglass teacher, students
trained from ground truth and by Fast Pose Distillation) and Bulat & Tzimiropoulos (ICCV 2017: binarized
Hourglass). GFLOPs are GMACs, the unit Hourglass papers call GFLOPs; a binarized model's binary MACs are counted
like real ones.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ..bench.profiling import profile_models
from ..config import ExperimentConfig
from ..errors import DataError
from ..io import atomic_open, atomic_write_json, atomic_write_text
from ..training.run_dir import read_run_manifest, started_by

__all__ = ["RunEntry", "load_runs", "pareto_front", "run_command", "training_command", "evaluate_command",
           "build_report",
           "format_markdown"]


_TEACHER_NORM_WORDS = {"peak": ", teacher rescaled to peak 1", "clip": ", teacher clipped to [0, 1]"}


@dataclass
class RunEntry:
    """One row of the report (a run directory)."""

    label: str
    run_dir: str
    model: str
    input_size: int | None = None
    depth: int = 4  # hourglass depth (model.depth)
    mode: str | None = None  # train | distill
    alpha: float | None = None
    teacher: str | None = None
    teacher_cache: str | None = None
    init: str | None = None
    teacher_norm: str | None = None  # distill.teacher_norm when not "none"
    negatives: float = 0.0  # data.augment.negative_prob: share of training crops without the person
    note: str | None = None  # e.g. "ONNX Runtime int8 of fpd_hg2_64" (cost.json / results.json "note")
    train_minutes: float | None = None  # sum of the engine's per-epoch training times (validation excluded)
    epochs: int | None = None
    params: int | None = None
    gmacs: float | None = None
    latency_ms: float | None = None
    cost_source: str | None = None
    best_val_pck: float | None = None
    evals: dict[str, dict[str, Any]] = field(default_factory=dict)  # "flip" / "noflip" -> eval JSON (+ path)
    pck: float | None = None  # results.json rows: PCK of their own evaluation (no per-joint values)
    commands: list[str] = field(default_factory=list)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, validation PCK) from the history

    @property
    def binarized(self) -> bool:
        return self.model.endswith("_bin")

    @property
    def training(self) -> str:
        """How the model was trained, in words (plus the run's note, e.g. how it was exported)."""
        text = self._training()
        return f"{text}; {self.note}" if text and self.note else text or self.note or ""

    def _training(self) -> str:
        init = f", init {_checkpoint_name(self.init)}" if self.init else ""
        if self.negatives:  # a fine-tune with negatives is not the alpha-0 control of an FPD run
            return f"ground truth only, {self.negatives:g} of the crops negatives (no person)" + init
        if self.mode == "distill" and self.alpha == 0:  # no teacher term: a ground-truth control, not FPD
            return "ground truth only (alpha-0 control of the FPD runs)" + init
        if self.mode == "distill":
            teacher = Path(self.teacher).parent.name if self.teacher else "?"
            text = f"FPD alpha={self.alpha:g} from {teacher}" if self.alpha is not None else f"FPD from {teacher}"
            text += " (cached)" if self.teacher_cache else ""
            if self.teacher_norm:
                text += _TEACHER_NORM_WORDS.get(self.teacher_norm, f", teacher_norm={self.teacher_norm}")
            return text + init
        if self.mode == "train":
            return "ground truth" + init
        return self.mode or ""

    def pck_mean(self, flip: bool) -> float | None:
        ev = self.evals.get("flip" if flip else "noflip")
        return float(ev["pck"]["mean"]) if ev else None

    def headline_pck(self) -> tuple[float | None, str]:
        """The PCK the figures use: flip test if evaluated, else without flip, else the results.json value."""
        for flip, name in ((True, "flip"), (False, "no flip")):
            value = self.pck_mean(flip)
            if value is not None:
                return value, name
        return self.pck, "results.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable JSON ({exc})") from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: unreadable YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping")
    return data


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def run_command(run_dir: str | Path, config: dict[str, Any]) -> str:
    """The command that started a run: quoted from its ``run.json`` (:mod:`posedistill.training.run_dir`); for a run made
    before run manifests existed, rebuilt from its ``config.yaml`` by :func:`training_command`."""
    return started_by(read_run_manifest(run_dir)) or training_command(config, run_dir)


def training_command(config: dict[str, Any], run_dir: str | Path) -> str:
    """For runs made before ``run.json``: a command that reproduces a run from its resolved ``config.yaml``:
    every key that differs from the defaults as ``--set``, plus the run's teacher / cache / init / unlabeled
    paths."""
    run = config.get("run") or {}
    mode = run.get("mode") or "train"
    defaults = _flatten(ExperimentConfig().to_dict())
    parts = ["posedistill", mode, "--out", str(run_dir)]
    for key, value in _flatten({k: v for k, v in config.items() if k != "run"}).items():
        if key in defaults and defaults[key] == value:
            continue
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
        text = text[:-4].strip() if text.endswith("\n...") or text.endswith(" ...") else text
        parts += ["--set", f"{key}={text}"]
    for flag, key in (("--teacher", "teacher"), ("--teacher-cache", "teacher_cache"), ("--init", "init"),
                      ("--unlabeled", "unlabeled")):
        if run.get(key):
            parts += [flag, str(run[key])]
    return shlex.join(parts)


def evaluate_command(ev: dict[str, Any], json_path: str | Path) -> str:
    """The ``posedistill evaluate`` command that wrote an evaluation JSON: quoted from its ``invocation``
    (:func:`posedistill.training.run_dir.write_evaluation`), rebuilt from its fields for older files."""
    quoted = (ev.get("invocation") or {}).get("command")
    if quoted:
        return str(quoted)
    parts = ["posedistill", "evaluate", str(ev.get("checkpoint", "?")), "--data", str(ev.get("data", "?")),
             "--dataset", str(ev.get("dataset", "lspet")), "--split", str(ev.get("split", "test")),
             "--flip" if ev.get("flip", True) else "--no-flip"]
    if ev.get("multi_scale"):
        parts.append("--multi-scale")
    if ev.get("pckh"):
        parts.append("--pckh")
    return shlex.join([*parts, "--json", str(json_path)])


def _load_evals(run_dir: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    evals: dict[str, dict[str, Any]] = {}
    commands = []
    for path in sorted(run_dir.glob("eval*.json")):
        ev = _read_json(path)
        if not isinstance(ev, dict) or "pck" not in ev or "mean" not in ev.get("pck", {}):
            raise DataError(f"{path}: not an evaluation JSON (written by `posedistill evaluate --json`)")
        key = "flip" if ev.get("flip", True) else "noflip"
        if key in evals:
            raise DataError(f"{run_dir}: two {key} evaluations ({evals[key]['path']} and {path}); keep one")
        evals[key] = {**ev, "path": str(path)}
        commands.append(evaluate_command(ev, path))
    return evals, commands


_RUN_FILES = ("config.yaml", "metrics.json", "cost.json", "run.json")  # results.json may be a folder's table


def _is_run(path: Path) -> bool:
    return any((path / name).is_file() for name in _RUN_FILES) or any(path.glob("eval*.json"))


def expand_run_dirs(run_dirs: Sequence[str | Path]) -> list[Path]:
    """Run directories, a folder that holds only run directories (e.g. a quickstart's) standing for them, sorted
    by name; DataError for a missing directory."""
    out: list[Path] = []
    for item in run_dirs:
        path = Path(item)
        if not path.is_dir():
            raise DataError(f"{path}: run directory not found")
        inner = sorted(p for p in path.iterdir() if p.is_dir() and _is_run(p))
        out += inner if (inner and not _is_run(path)) else [path]
    return out


def load_runs(run_dirs: Sequence[str | Path]) -> list[RunEntry]:
    """Read every run directory into report entries (costs not yet computed; see :func:`fill_costs`)."""
    entries: list[RunEntry] = []
    for run_dir in expand_run_dirs(run_dirs):
        config = _read_yaml(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else {}
        metrics = _read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
        results = _read_json(run_dir / "results.json") if (run_dir / "results.json").is_file() else None
        cost = _read_json(run_dir / "cost.json") if (run_dir / "cost.json").is_file() else {}
        evals, eval_commands = _load_evals(run_dir)
        extra = results if isinstance(results, dict) else {}
        run = config.get("run") or {}
        model = (cost.get("model") or extra.get("model") or (config.get("model") or {}).get("name")
                 or metrics.get("model"))
        if not model:
            raise DataError(f"{run_dir}: cannot tell the model (no config.yaml, metrics.json, results.json or "
                            f"cost.json naming it)")
        distill = (config.get("distill") or {}) if run.get("mode") == "distill" else {}
        entry = RunEntry(
            label=str(cost.get("label") or extra.get("label") or run_dir.name), run_dir=str(run_dir),
            model=str(model), input_size=(config.get("data") or {}).get("input_size") or cost.get("input_size"),
            depth=int((config.get("model") or {}).get("depth", 4)), mode=run.get("mode"), alpha=distill.get("alpha"), teacher=run.get("teacher"),
            teacher_cache=run.get("teacher_cache"), init=run.get("init"),
            teacher_norm=None if distill.get("teacher_norm", "none") == "none" else distill["teacher_norm"],
            negatives=float(((config.get("data") or {}).get("augment") or {}).get("negative_prob") or 0.0),
            best_val_pck=metrics.get("best_val_pck"), evals=evals)
        history = metrics.get("history") or []
        times = [row.get("epoch_time_s") for row in history if isinstance(row, dict)]
        if history and all(isinstance(t, (int, float)) for t in times):
            entry.train_minutes, entry.epochs = sum(times) / 60.0, len(history)
        source = cost if cost else extra
        entry.note = source.get("note")
        entry.commands += [str(c) for c in source.get("commands", [])]
        if source.get("gmacs") is not None:
            entry.params, entry.gmacs = source.get("params"), source.get("gmacs")
            entry.latency_ms = source.get("latency_ms")
            entry.cost_source = "cost.json" if cost else "results.json"
        if config:
            entry.commands.append(run_command(run_dir, config))
        entry.commands += eval_commands
        entry.curve = [(int(r["epoch"]), float(r["val_pck"])) for r in history
                       if isinstance(r, dict) and isinstance(r.get("val_pck"), (int, float))]
        if not entry.curve and (run_dir / "log.csv").is_file():  # a run still training: metrics.json comes last
            entry.curve = _log_curve(run_dir / "log.csv")
        entries.append(entry)
    if not entries:
        raise DataError("no runs to report")
    names = [e.label for e in entries]
    for e in entries:  # two folders of the same name (runs/cpu/x, runs/lspet128/x): name them by their parent too
        if names.count(e.label) > 1 and e.label == Path(e.run_dir).name:
            e.label = f"{Path(e.run_dir).parent.name}/{e.label}"
    return entries


def _log_curve(path: Path) -> list[tuple[int, float]]:
    """(epoch, validation PCK) rows of an engine ``log.csv``; empty when unreadable."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [(int(r["epoch"]), float(r["val_pck"])) for r in csv.DictReader(handle) if r.get("val_pck")]
    except (OSError, ValueError, KeyError):
        return []


def fill_costs(entries: list[RunEntry], *, latency: bool = True, threads: int | None = None,
               repeats: int = 10) -> None:
    """Compute params, GMACs and batch-1 CPU latency (:func:`~posedistill.bench.profiling.profile_models`) for
    entries without a stored cost, once per (model, input size)."""
    done: dict[tuple[str, int, int], dict[str, Any]] = {}
    for entry in entries:
        if entry.gmacs is not None:
            continue
        size = int(entry.input_size or 256)
        key = (entry.model, size, entry.depth)
        if key not in done:
            done[key] = profile_models([entry.model], input_size=size, threads=threads, repeats=repeats,
                                       warmup=min(3, repeats), latency=latency, depth=entry.depth)[0]
        row = done[key]
        entry.params, entry.gmacs, entry.latency_ms = row["params"], row["gmacs"], row["latency_ms"]
        entry.cost_source = f"profile_models (input {size}, {row['threads']} threads)"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (cost, accuracy) points, whether each is on the Pareto front: no other point has cost <= and
    accuracy >= with at least one strict (lower cost and higher accuracy are better)."""
    flags = []
    for i, (c, a) in enumerate(points):
        dominated = any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for j, (c2, a2) in enumerate(points) if j != i)
        flags.append(not dominated)
    return flags


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


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
    by_dir = _entries_by_dir(entries)
    starts = {}
    for e in entries:
        parent = by_dir.get(_run_of(e.init) or "")
        if parent is not None and parent is not e and parent.curve:
            starts[e.label] = (max(parent.curve, key=lambda point: point[1])[0], parent.label)
    return starts


def _entries_by_dir(entries: list[RunEntry]) -> dict[str, RunEntry]:
    """The entries keyed by their resolved run directory (what :func:`_run_of` gives for a checkpoint in it)."""
    return {str(Path(e.run_dir).resolve()): e for e in entries}


def _checkpoint_name(path: str) -> str:
    """A run's checkpoint by its run's name (``runs/x/best.pt`` -> ``x``), any other file by its own name (shipped
    weights: ``weights/teacher_hg4_128_lspet.pt``)."""
    p = Path(path)
    return p.parent.name if p.name in ("best.pt", "last.pt", "snapshot.pt") else p.name


def _run_of(path: str | None) -> str | None:
    """The run directory a checkpoint path belongs to, normalised for comparison."""
    return str(Path(path).parent.resolve()) if path else None


def _ground_truth_twin(entries: list[RunEntry], model: str, input_size: int | None) -> RunEntry | None:
    """The first evaluated run of ``model`` at ``input_size`` trained from ground truth, from scratch."""
    return next((g for g in entries if g.mode == "train" and g.model == model and not g.init
                 and g.input_size == input_size and g.headline_pck()[0] is not None), None)


def _ground_truth_only(entry: RunEntry | None) -> bool:
    return entry is not None and (entry.mode == "train" or (entry.mode == "distill" and entry.alpha == 0))


def _lineage_twin(entries: list[RunEntry], e: RunEntry, by_dir: dict[str, RunEntry]) -> RunEntry | None:
    """For an FPD run continued from an FPD run (``--init``), the ground-truth run of the same model, input size and
    number of epochs continued from a ground-truth run: the two lineages trained alike for equal epochs."""
    parent = by_dir.get(_run_of(e.init) or "")
    if parent is None or _ground_truth_only(parent):
        return None
    return next((g for g in entries if g is not e and _ground_truth_only(g) and g.init and g.model == e.model
                 and g.input_size == e.input_size and g.epochs == e.epochs and not g.negatives
                 and _ground_truth_only(by_dir.get(_run_of(g.init) or "")) and g.headline_pck()[0] is not None),
                None)


def _distillation_sections(entries: list[RunEntry]) -> list[str]:
    """FPD students against their teacher and the same model trained from ground truth (same input size, from
    scratch, not binarized), and the alpha sweep per model; PCK is each entry's headline PCK."""
    by_dir = _entries_by_dir(entries)
    # an alpha-0 run has no teacher term: it is the ground-truth control of the FPD runs, never an FPD run itself
    fpd = [e for e in entries if e.mode == "distill" and e.alpha != 0 and e.headline_pck()[0] is not None]
    lines: list[str] = []
    rows = []
    for e in fpd:
        teacher = by_dir.get(_run_of(e.teacher) or "")
        plain = _ground_truth_twin(entries, e.model, e.input_size)
        if e.init:  # a student started from another checkpoint: compare with the same start and alpha 0
            # (as long and on the same data: a shorter fine-tune, or one with negatives, is no control)
            control = next((g for g in entries if g.mode == "distill" and g.alpha == 0 and g is not e
                            and g.model == e.model and _run_of(g.init) == _run_of(e.init)
                            and g.epochs == e.epochs and g.negatives == e.negatives
                            and g.headline_pck()[0] is not None), None)
            # no run trained alike for as long: no gain (the from-scratch twin trained for fewer epochs)
            plain = control or _lineage_twin(entries, e, by_dir)
        pck = e.headline_pck()[0]
        t_pck = teacher.headline_pck()[0] if teacher else None
        g_pck = plain.headline_pck()[0] if plain else None
        rows.append(f"| {e.label} | {e.training} | {_fmt(g_pck, '.1f')} | {_fmt(pck, '.1f')} | "
                    f"{_fmt(None if g_pck is None else pck - g_pck, '+.1f')} | {_fmt(t_pck, '.1f')} | "
                    f"{_fmt(None if t_pck is None else t_pck - pck, '.1f')} | "
                    f"{_fmt(teacher and teacher.gmacs and e.gmacs and e.gmacs / teacher.gmacs, '.3f')} |")
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
            lines.append(f"| {alpha:g} | {e.label} | {_fmt(e.pck_mean(True), '.1f')} | "
                         f"{_fmt(e.pck_mean(False), '.1f')} | {_fmt(e.best_val_pck, '.1f')} |")
    return lines


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
        "| run | model | input | training | params (M) | GFLOPs | CPU latency (ms) | PCK@0.2 flip "
        "| PCK@0.2 no flip | AUC | split | best val PCK | epochs | train time (min) |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for e in entries:
        ev = e.evals.get("flip") or e.evals.get("noflip")
        pck_flip = e.pck_mean(True) if e.evals else e.pck
        lines.append(
            f"| {e.label} | {e.model} | {_fmt(e.input_size, 'd')} | {e.training} | "
            f"{_fmt(e.params and e.params / 1e6, '.3f')} | "
            f"{_fmt(e.gmacs, '.3f')} | {_fmt(e.latency_ms, '.1f')} | {_fmt(pck_flip, '.1f')} | "
            f"{_fmt(e.pck_mean(False), '.1f')} | {_fmt(ev and ev.get('auc'), '.1f')} | "
            f"{ev.get('split', '') if ev else ''} | {_fmt(e.best_val_pck, '.1f')} | {_fmt(e.epochs, 'd')} | "
            f"{_fmt(e.train_minutes, '.1f')} |")
    lines += _distillation_sections(entries)
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
            lines.append(f"| {e.label} | " + " | ".join(_fmt(v, ".1f") for v in pck["per_joint"])
                         + f" | {_fmt(pck['mean'], '.1f')} |")
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
