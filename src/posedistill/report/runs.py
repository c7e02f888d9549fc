"""The runs a report is made of: one :class:`RunEntry` per run directory, read from its files.

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

The exact commands are quoted from the run files (:mod:`posedistill.training.run_dir`); only for runs made
before those files existed are they rebuilt from the config and the JSON.
"""

from __future__ import annotations

import csv
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..bench.profiling import profile_models
from ..config import ExperimentConfig
from ..errors import DataError
from ..models import DEFAULT_DEPTH
from ..training.run_dir import read_run_manifest, started_by

__all__ = ["RunEntry", "load_runs", "expand_run_dirs", "fill_costs", "run_command", "training_command",
           "evaluate_command", "entries_by_dir", "run_of", "checkpoint_name", "fmt"]

_TEACHER_NORM_WORDS = {"peak": ", teacher rescaled to peak 1", "clip": ", teacher clipped to [0, 1]"}


@dataclass
class RunEntry:
    """One row of the report (a run directory)."""

    label: str
    run_dir: str
    model: str
    input_size: int | None = None
    train_split: str | None = None  # data.train: the named training split (e.g. LSPET's train or train6500)
    depth: int = DEFAULT_DEPTH  # hourglass depth (model.depth)
    mode: str | None = None  # train | distill
    alpha: float | None = None
    teacher: str | None = None
    teacher_cache: str | None = None
    init: str | None = None
    control: str | None = None  # run.control: the run an FPD run is compared with
    teacher_norm: str | None = None  # distill.teacher_norm when not "none"
    teacher_targets: str | None = None  # distill.teacher_targets when not "augmented" (e.g. "warped")
    teacher_flip: bool = False  # distill.teacher_flip: flip-averaged teacher heatmaps
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
        init = f", init {checkpoint_name(self.init)}" if self.init else ""
        negatives = f", {self.negatives:g} of the crops negatives (no person)" if self.negatives else ""
        if self.mode == "distill" and self.alpha == 0:  # no teacher term: a ground-truth control, not FPD
            # a fine-tune with negatives is not the alpha-0 control of an FPD run
            return ("ground truth only" + negatives if negatives
                    else "ground truth only (alpha-0 control of the FPD runs)") + init
        if self.mode == "distill":
            teacher = Path(self.teacher).parent.name if self.teacher else "?"
            text = f"FPD alpha={self.alpha:g} from {teacher}" if self.alpha is not None else f"FPD from {teacher}"
            targets = [t for t in (self.teacher_targets or ("cached" if self.teacher_cache else None),
                                   "flip-averaged" if self.teacher_flip else None) if t]
            text += f" ({', '.join(targets)})" if targets else ""
            if self.teacher_norm:
                text += _TEACHER_NORM_WORDS.get(self.teacher_norm, f", teacher_norm={self.teacher_norm}")
            return text + negatives + init
        if self.mode == "train":
            return "ground truth" + negatives + init
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
    """The command that started a run: quoted from its ``run.json`` (:mod:`posedistill.training.run_dir`); for a run
    made before run manifests existed, rebuilt from its ``config.yaml`` by :func:`training_command`."""
    return started_by(read_run_manifest(run_dir)) or training_command(config, run_dir)


_RUN_FLAGS = {"run.teacher": "--teacher", "run.teacher_cache": "--teacher-cache", "run.init": "--init",
              "run.unlabeled": "--unlabeled", "run.control": "--control"}


def training_command(config: dict[str, Any], run_dir: str | Path) -> str:
    """For runs made before ``run.json``: a command that reproduces a run from its resolved ``config.yaml``: the
    run inputs as their flags (``--teacher``, ``--init``, ...), every other key that differs from the defaults as
    ``--set``."""
    mode = (config.get("run") or {}).get("mode") or "train"
    defaults = _flatten(ExperimentConfig().to_dict())
    parts, flags = ["posedistill", mode, "--out", str(run_dir)], []
    for key, value in _flatten(config).items():
        if key == "run.mode" or (key in defaults and defaults[key] == value):
            continue
        if key in _RUN_FLAGS:
            flags += [_RUN_FLAGS[key], str(value)]
            continue
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
        text = text[:-4].strip() if text.endswith("\n...") or text.endswith(" ...") else text
        parts += ["--set", f"{key}={text}"]
    return shlex.join(parts + flags)


def evaluate_command(ev: dict[str, Any], json_path: str | Path) -> str:
    """The ``posedistill evaluate`` command that wrote an evaluation JSON: quoted from its ``invocation``
    (:func:`posedistill.evaluation.write_evaluation`), rebuilt from its fields for older files."""
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
    """The evaluations the report's columns use ("flip" / "noflip"), and the commands of every evaluation. A run
    evaluated on several splits (e.g. the test slice and training images, for the train/validation gap) is
    reported on ``test``; a run evaluated on one split only, on that one."""
    by_split: dict[str, dict[str, dict[str, Any]]] = {}
    commands = []
    for path in sorted(run_dir.glob("eval*.json")):
        ev = _read_json(path)
        if not isinstance(ev, dict) or "pck" not in ev or "mean" not in ev.get("pck", {}):
            raise DataError(f"{path}: not an evaluation JSON (written by `posedistill evaluate --json`)")
        split = str(ev.get("split", "test"))
        key = "flip" if ev.get("flip", True) else "noflip"
        evals = by_split.setdefault(split, {})
        if key in evals:
            raise DataError(f"{run_dir}: two {key} evaluations of split {split!r} ({evals[key]['path']} and "
                            f"{path}); keep one")
        evals[key] = {**ev, "path": str(path)}
        commands.append(evaluate_command(ev, path))
    if len(by_split) > 1 and "test" not in by_split:
        raise DataError(f"{run_dir}: evaluations of several splits ({', '.join(sorted(by_split))}) and none of "
                        f"'test'; keep the ones to report")
    return by_split.get("test", next(iter(by_split.values()), {})), commands


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
            train_split=(config.get("data") or {}).get("train"),
            depth=int((config.get("model") or {}).get("depth", DEFAULT_DEPTH)), mode=run.get("mode"),
            alpha=distill.get("alpha"), teacher=run.get("teacher"),
            teacher_cache=run.get("teacher_cache"), init=run.get("init"), control=run.get("control"),
            teacher_norm=None if distill.get("teacher_norm", "none") == "none" else distill["teacher_norm"],
            teacher_targets=None if distill.get("teacher_targets", "augmented") == "augmented"
            else distill["teacher_targets"], teacher_flip=bool(distill.get("teacher_flip", False)),
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


def fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)



def entries_by_dir(entries: list[RunEntry]) -> dict[str, RunEntry]:
    """The entries keyed by their resolved run directory (what :func:`_run_of` gives for a checkpoint in it)."""
    return {str(Path(e.run_dir).resolve()): e for e in entries}


def checkpoint_name(path: str) -> str:
    """A run's checkpoint by its run's name (``runs/x/best.pt`` -> ``x``), any other file by its own name (shipped
    weights: ``weights/teacher_hg4_128_lspet.pt``)."""
    p = Path(path)
    return p.parent.name if p.name in ("best.pt", "last.pt", "snapshot.pt") else p.name


def run_of(path: str | None) -> str | None:
    """The run directory a checkpoint path belongs to, normalised for comparison."""
    return str(Path(path).parent.resolve()) if path else None
