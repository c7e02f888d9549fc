"""The quickstart: the shipped teacher and student, then the student adapted by FPD with unlabeled images and
from ground truth alone.

Uses the real images embedded in ``posedistill/assets/lspet_mini`` (see its README): none of them was used to
train a shipped model. Images 1-500 (LSPET's validation slice) are the "user's own images" the student is
adapted to, of which only images 1-50 are labeled; images 501-650 (from LSPET's test slice) are held aside for
evaluation. It

1. evaluates the shipped teacher and student side by side on the held-aside images (PCK@0.2, flip test) with
   their cost (parameters, GMACs, CPU latency at batch 1);
2. adapts the shipped student twice, with the same start, seed, recipe (the student's own training config, a
   lower cosine-decayed rate) and number of optimiser steps: by Fast Pose Distillation from the shipped
   teacher (alpha 0.5) on all 500 images, the 450 unlabeled ones carrying the teacher's term only (the paper's
   use of unlabeled data), and from the ground truth of the 50 labeled images only (the alpha-0 control, which
   has no use for unlabeled images); and evaluates both.

It writes one table (``results.md``, ``results.json``); every row's folder is a run directory that
``posedistill report OUT`` reads.
"""

from __future__ import annotations

import gc
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from .models.checkpoint import load_checkpoint
from .config import config_from_dict
from .errors import ConfigError
from .evaluation import PairedPCK, evaluate_checkpoint, write_evaluation
from .io import atomic_write_json, atomic_write_text
from .models import DEFAULT_DEPTH
from .bench.profiling import profile_models
from .data.splits import image_range, read_split
from .training import Trainer
from .models.pretrained import default_weights

__all__ = ["QuickstartSettings", "embedded_data_dir", "run_quickstart", "format_markdown", "ROLES"]

# role -> what the table calls it
ROLES = {
    "teacher": "shipped teacher",
    "student": "shipped student",
    "adapted_gt": "student adapted from the labeled images' ground truth (alpha 0)",
    "adapted_fpd": "student adapted by FPD from the teacher, unlabeled images too",
}


def embedded_data_dir() -> Path:
    """Folder of the embedded LSPET subset (``joints.mat`` + ``images/``)."""
    return Path(str(resources.files("posedistill") / "assets" / "lspet_mini"))


@dataclass
class QuickstartSettings:
    teacher: str | Path | None = None  # teacher checkpoint (None: the shipped teacher)
    student: str | Path | None = None  # student checkpoint (None: the shipped student)
    adapt_epochs: int = 6  # epochs of the FPD run over labeled + unlabeled images (the control: the same steps)
    batch_size: int = 16
    lr: float = 2.5e-4  # a quarter of the rate the shipped models were trained with
    alpha: float = 0.5
    labeled_range: str = "1-50"
    unlabeled_range: str = "51-500"  # used as a folder of photos, without their joints
    test_range: str = "501-650"
    seed: int = 0
    workers: int = 0

    def control_epochs(self) -> int:
        """Epochs of the ground-truth control over the labeled images alone: as many optimiser steps as the FPD
        run takes over labeled and unlabeled images (batches of ``batch_size``, the last partial one dropped)."""
        labeled, unlabeled = len(image_range(self.labeled_range)), len(image_range(self.unlabeled_range))
        steps = self.adapt_epochs * ((labeled + unlabeled) // self.batch_size)
        return max(1, round(steps / max(labeled // self.batch_size, 1)))


def adaptation_config(s: QuickstartSettings, student_ckpt: dict[str, Any], *, role: str, alpha: float,
                      epochs: int, teacher: Path, student: Path, unlabeled: Path | None = None,
                      teacher_input_size: int | None = None):
    """The student's own training config (model, depth, input size, sigma, loss, augmentation), on the embedded
    labeled images, for ``epochs`` epochs of cosine decay from ``s.lr`` without warm-up, at ``alpha``, started
    from ``student`` with ``teacher`` (and ``unlabeled`` images): these run inputs replace the ones the student
    was trained with. The teacher runs on every crop (the paper's targets: unlabeled photos have no person crop
    to pre-compute), at ``teacher_input_size`` where that differs from the student's."""
    base = dict(student_ckpt.get("config") or {})
    arch = student_ckpt["arch"]
    data = {**(base.get("data") or {}), "dataset": "lspet", "root": str(embedded_data_dir()),
            "train": s.labeled_range, "val": "", "input_size": int(student_ckpt["input_size"]),
            "sigma": float(student_ckpt.get("sigma", (base.get("data") or {}).get("sigma", 2.0))),
            "sigma_start": 0.0, "sigma_epochs": 0, "workers": s.workers, "limit": 0}
    return config_from_dict({
        **base, "name": role, "seed": s.seed,
        "model": {**(base.get("model") or {}), "name": arch["name"], "depth": int(arch.get("depth", DEFAULT_DEPTH))},
        "data": data,
        "optim": {**(base.get("optim") or {}), "lr": s.lr},
        "schedule": {"kind": "cosine", "warmup_epochs": 0, "min_lr_ratio": 0.01},
        "train": {**(base.get("train") or {}), "epochs": epochs, "batch_size": s.batch_size, "val_every": 1},
        "distill": {**(base.get("distill") or {}), "alpha": alpha, "teacher_targets": "augmented",
                    "teacher_input_size": 0 if teacher_input_size in (None, data["input_size"])
                    else int(teacher_input_size)},
        "run": {"teacher": str(teacher), "init": str(student),
                "unlabeled": str(unlabeled) if unlabeled is not None else None},
    })


class _Costs:
    """Params, GMACs and batch-1 CPU latency, measured once per (model, depth, input size)."""

    def __init__(self) -> None:
        self.seen: dict[tuple, dict[str, Any]] = {}

    def __call__(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        arch = ckpt["arch"]
        key = (arch["name"], int(arch.get("depth", DEFAULT_DEPTH)), int(ckpt["input_size"]), int(arch["num_joints"]))
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
    teacher = Path(s.teacher) if s.teacher is not None else default_weights(role="teacher", backend="torch")
    student = Path(s.student) if s.student is not None else default_weights(role="student", backend="torch")
    student_ckpt = load_checkpoint(student)
    data = embedded_data_dir()
    command = command if command is not None else ["posedistill", "quickstart", "--out", str(root)]
    log(f"quickstart: embedded LSPET images {data} (adapt on {s.labeled_range} labeled and {s.unlabeled_range} "
        f"unlabeled, held aside {s.test_range}); teacher {teacher}, student {student}; output {root}")
    costs, rows, predictions = _Costs(), [], {}

    def finish(role: str, checkpoint: Path, train_s: float) -> None:
        ckpt = load_checkpoint(checkpoint)
        result = evaluate_checkpoint(checkpoint, data, dataset="lspet", split=s.test_range, flip=True,
                                     keep_predictions=True)
        predictions[role] = result.predictions
        (root / role).mkdir(parents=True, exist_ok=True)
        write_evaluation(root / role / "eval_test.json", result, command)
        cost = costs(ckpt)
        row = {"role": role, "label": ROLES[role], "model": ckpt["arch"]["name"],
               "depth": int(ckpt["arch"].get("depth", DEFAULT_DEPTH)), "input_size": int(ckpt["input_size"]),
               "checkpoint": str(checkpoint), "params": cost["params"], "gmacs": cost["gmacs"],
               "latency_ms": cost["latency_ms"], "pck": result.pck["mean"], "auc": result.auc,
               "people": result.num_people, "train_s": train_s}
        atomic_write_json(root / role / "cost.json", {k: row[k] for k in (
            "label", "model", "input_size", "params", "gmacs", "latency_ms")})
        rows.append(row)
        log(f"[{role}] PCK@0.2 {row['pck']:.1f} on {result.num_people} held-aside people"
            + (f" ({train_s:.0f} s adapting)" if train_s else ""))

    finish("teacher", teacher, 0.0)
    teacher_input_size = rows[-1]["input_size"]  # the teacher's row, read from its checkpoint
    finish("student", student, 0.0)
    unlabeled = _unlabeled_folder(data, s.unlabeled_range, root / "unlabeled_images")
    for role, alpha, epochs, extra in (("adapted_gt", 0.0, s.control_epochs(), None),
                                       ("adapted_fpd", s.alpha, s.adapt_epochs, unlabeled)):
        log(f"[{role}] adapting the student for {epochs} epochs, alpha {alpha:g}"
            + (f", with {len(list(unlabeled.iterdir()))} unlabeled images" if extra else ", labeled images only"))
        start = time.perf_counter()
        cfg = adaptation_config(s, student_ckpt, role=role, alpha=alpha, epochs=epochs, teacher=teacher,
                                student=student, unlabeled=extra, teacher_input_size=teacher_input_size)
        Trainer(cfg, root / role, progress=progress, command=command).fit()
        finish(role, root / role / "last.pt", time.perf_counter() - start)
    fpd, gt = predictions["adapted_fpd"], predictions["adapted_gt"]
    diff, se = PairedPCK(fpd["gt"], fpd["visible"], fpd["norm"]).difference(fpd["pred"], gt["pred"])
    for row in rows:
        if row["role"] == "adapted_fpd":
            row["vs_adapted_gt"], row["vs_adapted_gt_se"] = diff, se
    log(f"FPD - ground truth: {diff:+.1f} PCK (paired bootstrap standard error {se:.1f})")
    atomic_write_json(root / "results.json", rows)
    atomic_write_text(root / "results.md", format_markdown(rows, s))
    return rows


def _unlabeled_folder(data: Path, images: str, folder: Path) -> Path:
    """Copies of the embedded images ``images`` (a range such as ``"51-500"``) in ``folder``, a user's folder of
    unlabeled photos (kept in the output: the FPD run's ``config.yaml`` names it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for record in read_split("lspet", data, images):
        shutil.copyfile(record.image, folder / record.image.name)
    return folder


def format_markdown(rows: list[dict[str, Any]], s: QuickstartSettings) -> str:
    lines = [
        f"# posedistill quickstart (embedded LSPET images, PCK@0.2 with flip test on the "
        f"{rows[0]['people'] if rows else 0} held-aside people of images {s.test_range})",
        "",
        f"Adaptation from the shipped student, same seed and number of steps for both: FPD {s.adapt_epochs} "
        f"epochs on images {s.labeled_range} (labeled) and {s.unlabeled_range} (unlabeled: teacher term only); "
        f"ground truth {s.control_epochs()} epochs on images {s.labeled_range}.",
        "",
        "| row | model | input | params (M) | GMACs | CPU latency (ms) | adapting (s) | PCK@0.2 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['label']} | {r['model']} | {r['input_size']} | {r['params'] / 1e6:.2f} | "
                     f"{r['gmacs']:.3f} | {r['latency_ms']:.1f} | {r['train_s']:.0f} | {r['pck']:.1f} |")
    fpd = next((r for r in rows if "vs_adapted_gt" in r), None)
    if fpd is not None:
        lines += ["", f"FPD minus ground truth: {fpd['vs_adapted_gt']:+.1f} PCK@0.2, paired bootstrap standard error "
                      f"{fpd['vs_adapted_gt_se']:.1f} (the same {fpd['people']} people resampled for both)."]
    return "\n".join(lines) + "\n"

