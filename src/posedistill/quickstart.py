"""The quickstart: teacher, plain student and FPD student on the embedded LSPET subset, in minutes on a CPU.

Uses the real images shipped in ``posedistill/assets/lspet_mini`` (600 LSPET training images, shrunk; see its
README): images 1-500 train, 501-600 are held aside for evaluation. It trains a small teacher from ground truth,
then one student from ground truth and one by FPD from that teacher, with the same budget and seed, evaluates
the three on the held-aside images (PCK@0.2, flip test) and writes one table (Markdown and JSON).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from .config import config_from_dict
from .evaluation import evaluate_checkpoint
from .io import atomic_write_json, atomic_write_text
from .profiling import profile_models
from .run_files import write_evaluation
from .training import Trainer

__all__ = ["QuickstartSettings", "embedded_data_dir", "run_quickstart", "format_markdown"]


def embedded_data_dir() -> Path:
    """Folder of the embedded LSPET subset (``joints.mat`` + ``images/``)."""
    return Path(str(resources.files("posedistill") / "assets" / "lspet_mini"))


@dataclass
class QuickstartSettings:
    teacher: str = "hg2_64"
    student: str = "hg1_32"
    input_size: int = 128
    teacher_epochs: int = 12
    student_epochs: int = 12
    batch_size: int = 8
    lr: float = 2.5e-3
    alpha: float = 0.5
    train_range: str = "1-500"
    test_range: str = "501-600"
    seed: int = 0
    workers: int = 1
    limit: int = 0  # first N training images only (0: all); for tests


def _config(s: QuickstartSettings, model: str, epochs: int, name: str):
    milestones = [max(1, int(epochs * 0.8))]
    return config_from_dict({
        "name": name, "seed": s.seed, "model": {"name": model},
        "data": {"dataset": "lspet", "root": str(embedded_data_dir()), "train": s.train_range, "val": "",
                 "input_size": s.input_size, "sigma": 2.0,
                 "workers": s.workers, "limit": s.limit},
        "optim": {"optimizer": "adam", "lr": s.lr},
        "schedule": {"milestones": milestones, "gamma": 0.1},
        "train": {"epochs": epochs, "batch_size": s.batch_size},
        "distill": {"alpha": s.alpha},
    })


def run_quickstart(out: str | Path | None = None, settings: QuickstartSettings | None = None, *,
                   progress: bool = True, log=print, command: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the quickstart into ``out`` (default ``runs/quickstart-<timestamp>``); returns the table rows.

    Each model's folder ``out/<role>/`` is an ordinary run directory (``run.json``, ``config.yaml``,
    ``metrics.json``, checkpoints) with its evaluation (``eval_test.json``) and cost (``cost.json``), so
    ``posedistill report out`` reads it like any folder of runs. ``command`` is recorded in the run files
    (default: the equivalent ``posedistill quickstart --out OUT``)."""
    s = settings or QuickstartSettings()
    root = Path(out) if out is not None else Path("runs") / f"quickstart-{datetime.now():%Y%m%d-%H%M%S}"
    if root.exists() and any(root.iterdir()):
        from .errors import ConfigError

        raise ConfigError(f"{root}: output directory exists and is not empty; choose another --out")
    data = embedded_data_dir()
    log(f"quickstart: embedded LSPET subset {data} (train {s.train_range}, held aside {s.test_range}); "
        f"input {s.input_size}; output {root}")
    runs = [("teacher", s.teacher, s.teacher_epochs, {}),
            ("student", s.student, s.student_epochs, {}),
            ("student_fpd", s.student, s.student_epochs, {"teacher": root / "teacher" / "last.pt"})]
    rows = []
    costs: dict[str, dict[str, Any]] = {}
    command = command if command is not None else ["posedistill", "quickstart", "--out", str(root)]
    for role, model, epochs, extra in runs:
        start = time.perf_counter()
        log(f"[{role}] training {model} for {epochs} epochs" + (" by FPD" if extra else " from ground truth"))
        Trainer(_config(s, model, epochs, role), root / role, progress=progress, command=command, **extra).fit()
        train_s = time.perf_counter() - start
        result = evaluate_checkpoint(root / role / "last.pt", data, dataset="lspet", split=s.test_range, flip=True)
        write_evaluation(root / role / "eval_test.json", result, command)
        if model not in costs:  # one measurement per architecture, so equal models show equal latency
            gc.collect()  # let the finished run's loader workers exit before timing
            costs[model] = profile_models([model], input_size=s.input_size, repeats=20, warmup=5)[0]
        cost = costs[model]
        atomic_write_json(root / role / "cost.json", {
            "label": role, "model": model, "input_size": s.input_size, "params": cost["params"],
            "gmacs": cost["gmacs"], "latency_ms": cost["latency_ms"]})
        rows.append({"model": model, "role": role, "params": cost["params"], "gmacs": cost["gmacs"],
                     "latency_ms": cost["latency_ms"], "pck": result.pck["mean"], "auc": result.auc,
                     "train_s": train_s, "input_size": s.input_size})
        log(f"[{role}] PCK@0.2 {result.pck['mean']:.1f} on {result.num_people} held-aside people "
            f"({train_s:.0f} s training)")
    atomic_write_json(root / "results.json", rows)
    atomic_write_text(root / "results.md", format_markdown(rows, s))
    return rows


def format_markdown(rows: list[dict[str, Any]], s: QuickstartSettings) -> str:
    lines = [
        f"# posedistill quickstart (embedded LSPET subset, input {s.input_size}, PCK@0.2 with flip test on "
        f"images {s.test_range})",
        "",
        "| model | role | params (M) | GMACs | CPU latency (ms) | PCK@0.2 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['role']} | {r['params'] / 1e6:.3f} | {r['gmacs']:.3f} | "
                     f"{r['latency_ms']:.1f} | {r['pck']:.1f} |")
    return "\n".join(lines) + "\n"
