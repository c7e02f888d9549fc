"""The quickstart: the shipped teacher and student, then the student adapted by FPD and from ground truth alone.

Uses the real images embedded in ``posedistill/assets/lspet_mini`` (see its README): none of them was used to
train a shipped model. Images 1-500 (LSPET's validation slice) are the "user's own images" the student is
adapted to, images 501-650 (from LSPET's test slice) are held aside for evaluation. It

1. evaluates the shipped teacher and student side by side on the held-aside images (PCK@0.2, flip test) with
   their cost (parameters, GMACs, CPU latency at batch 1);
2. adapts the shipped student to images 1-500 twice, with the same start, budget, seed and recipe (the student's
   own training config, a lower cosine-decayed rate): by Fast Pose Distillation from the shipped teacher
   (alpha 0.5), and from ground truth only (the alpha-0 control); and evaluates both.

It writes one table (``results.md``, ``results.json``); every row's folder is a run directory that
``posedistill report OUT`` reads.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from .models.checkpoint import load_checkpoint
from .config import config_from_dict
from .errors import ConfigError
from .evaluation import evaluate_checkpoint, write_evaluation
from .io import atomic_write_json, atomic_write_text
from .bench.profiling import profile_models
from .training import Trainer
from .models.pretrained import default_weights

__all__ = ["QuickstartSettings", "embedded_data_dir", "run_quickstart", "format_markdown", "ROLES"]

# role -> what the table calls it
ROLES = {
    "teacher": "shipped teacher",
    "student": "shipped student",
    "adapted_gt": "student adapted from ground truth only (alpha 0)",
    "adapted_fpd": "student adapted by FPD from the teacher",
}


def embedded_data_dir() -> Path:
    """Folder of the embedded LSPET subset (``joints.mat`` + ``images/``)."""
    return Path(str(resources.files("posedistill") / "assets" / "lspet_mini"))


@dataclass
class QuickstartSettings:
    teacher: str | Path | None = None  # teacher checkpoint (None: the shipped teacher)
    student: str | Path | None = None  # student checkpoint (None: the shipped student)
    adapt_epochs: int = 8
    batch_size: int = 16
    lr: float = 2.5e-4  # a quarter of the rate the shipped models were trained with
    alpha: float = 0.5
    train_range: str = "1-500"
    test_range: str = "501-650"
    seed: int = 0
    workers: int = 0
    limit: int = 0  # first N adaptation images only (0: all); for tests


def adaptation_config(s: QuickstartSettings, student_ckpt: dict[str, Any], *, role: str, alpha: float,
                      teacher: Path, student: Path):
    """The student's own training config (model, depth, input size, sigma, loss, augmentation), on the embedded
    images, for ``s.adapt_epochs`` epochs of cosine decay from ``s.lr`` without warm-up, at ``alpha``, started
    from ``student`` with ``teacher`` (the run inputs replace those the student was trained with)."""
    base = dict(student_ckpt.get("config") or {})
    arch = student_ckpt["arch"]
    data = {**(base.get("data") or {}), "dataset": "lspet", "root": str(embedded_data_dir()),
            "train": s.train_range, "val": "", "input_size": int(student_ckpt["input_size"]),
            "sigma": float(student_ckpt.get("sigma", (base.get("data") or {}).get("sigma", 2.0))),
            "sigma_start": 0.0, "sigma_epochs": 0, "workers": s.workers, "limit": s.limit}
    return config_from_dict({
        **base, "name": role, "seed": s.seed,
        "model": {**(base.get("model") or {}), "name": arch["name"], "depth": int(arch.get("depth", 4))},
        "data": data,
        "optim": {**(base.get("optim") or {}), "lr": s.lr},
        "schedule": {"kind": "cosine", "warmup_epochs": 0, "min_lr_ratio": 0.01},
        "train": {**(base.get("train") or {}), "epochs": s.adapt_epochs, "batch_size": s.batch_size,
                  "val_every": 1},
        "distill": {**(base.get("distill") or {}), "alpha": alpha},
        "run": {"teacher": str(teacher), "init": str(student)},
    })


class _Costs:
    """Params, GMACs and batch-1 CPU latency, measured once per (model, depth, input size)."""

    def __init__(self) -> None:
        self.seen: dict[tuple, dict[str, Any]] = {}

    def __call__(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        arch = ckpt["arch"]
        key = (arch["name"], int(arch.get("depth", 4)), int(ckpt["input_size"]), int(arch["num_joints"]))
        if key not in self.seen:
            gc.collect()
            self.seen[key] = profile_models([key[0]], depth=key[1], input_size=key[2], num_joints=key[3],
                                            repeats=20, warmup=5)[0]
        return self.seen[key]


def run_quickstart(out: str | Path | None = None, settings: QuickstartSettings | None = None, *,
                   progress: bool = True, log: Callable[[str], Any] = print,
                   command: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the quickstart into ``out`` (default ``runs/quickstart-<timestamp>``); returns the table rows.

    Each row's folder ``out/<role>/`` holds its evaluation (``eval_test.json``) and cost (``cost.json``); the
    adapted students' folders are ordinary run directories (``run.json``, ``config.yaml``, checkpoints), so
    ``posedistill report out`` reads the quickstart like any folder of runs. ``command`` is recorded in the run
    files (default: the equivalent ``posedistill quickstart --out OUT``)."""
    s = settings or QuickstartSettings()
    if s.adapt_epochs < 1:
        raise ConfigError(f"adapt_epochs must be >= 1, got {s.adapt_epochs}")
    root = Path(out) if out is not None else Path("runs") / f"quickstart-{datetime.now():%Y%m%d-%H%M%S}"
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root}: output directory exists and is not empty; choose another --out")
    teacher = Path(s.teacher) if s.teacher is not None else default_weights(role="teacher")
    student = Path(s.student) if s.student is not None else default_weights(role="student")
    student_ckpt = load_checkpoint(student)
    data = embedded_data_dir()
    command = command if command is not None else ["posedistill", "quickstart", "--out", str(root)]
    log(f"quickstart: embedded LSPET images {data} (adapt on {s.train_range}, held aside {s.test_range}); "
        f"teacher {teacher}, student {student}; output {root}")
    costs, rows = _Costs(), []

    def finish(role: str, checkpoint: Path, train_s: float) -> None:
        ckpt = load_checkpoint(checkpoint)
        result = evaluate_checkpoint(checkpoint, data, dataset="lspet", split=s.test_range, flip=True)
        (root / role).mkdir(parents=True, exist_ok=True)
        write_evaluation(root / role / "eval_test.json", result, command)
        cost = costs(ckpt)
        row = {"role": role, "label": ROLES[role], "model": ckpt["arch"]["name"],
               "depth": int(ckpt["arch"].get("depth", 4)), "input_size": int(ckpt["input_size"]),
               "checkpoint": str(checkpoint), "params": cost["params"], "gmacs": cost["gmacs"],
               "latency_ms": cost["latency_ms"], "pck": result.pck["mean"], "auc": result.auc,
               "people": result.num_people, "train_s": train_s}
        atomic_write_json(root / role / "cost.json", {k: row[k] for k in (
            "label", "model", "input_size", "params", "gmacs", "latency_ms")})
        rows.append(row)
        log(f"[{role}] PCK@0.2 {row['pck']:.1f} on {result.num_people} held-aside people"
            + (f" ({train_s:.0f} s adapting)" if train_s else ""))

    finish("teacher", teacher, 0.0)
    finish("student", student, 0.0)
    for role, alpha in (("adapted_gt", 0.0), ("adapted_fpd", s.alpha)):
        log(f"[{role}] adapting the student for {s.adapt_epochs} epochs, alpha {alpha:g}")
        start = time.perf_counter()
        cfg = adaptation_config(s, student_ckpt, role=role, alpha=alpha, teacher=teacher, student=student)
        Trainer(cfg, root / role, progress=progress, command=command).fit()
        finish(role, root / role / "last.pt", time.perf_counter() - start)
    atomic_write_json(root / "results.json", rows)
    atomic_write_text(root / "results.md", format_markdown(rows, s))
    return rows


def format_markdown(rows: list[dict[str, Any]], s: QuickstartSettings) -> str:
    lines = [
        f"# posedistill quickstart (embedded LSPET images, PCK@0.2 with flip test on the "
        f"{rows[0]['people'] if rows else 0} held-aside people of images {s.test_range})",
        "",
        f"Adaptation: {s.adapt_epochs} epochs on images {s.train_range} from the shipped student, same seed and "
        "budget for both.",
        "",
        "| row | model | input | params (M) | GMACs | CPU latency (ms) | adapting (s) | PCK@0.2 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['label']} | {r['model']} | {r['input_size']} | {r['params'] / 1e6:.2f} | "
                     f"{r['gmacs']:.3f} | {r['latency_ms']:.1f} | {r['train_s']:.0f} | {r['pck']:.1f} |")
    return "\n".join(lines) + "\n"

