"""FPD student training step with the online teacher vs with the teacher heatmap cache.

Fast Pose Distillation (Zhang, Zhu, Ye, CVPR 2019) runs the teacher on every augmented batch; posedistill's
:mod:`posedistill.training.teacher_cache` runs it once per (seed, epoch, index) and reuses the heatmaps for
every student of a sweep. This measures samples/s of one student step (FPD loss, forward + backward + Adam,
batch 16) in both modes on real augmented samples of the embedded LSPET subset at 128 input, with the batches
preloaded so that data loading (the same in both modes) is left out, and the two modes' steps interleaved so
that other load on the machine hits both alike; the cached mode reads the heatmaps from a memory-mapped epoch
file built just before (its build rate is reported too). Teachers are randomly initialised: speed does not
depend on the weights. Prints a table, writes benchmarks/results/teacher_cache.json.

    python benchmarks/teacher_cache.py [--pairs hg2_64:hg1_32,hg4_128:hg2_64] [--steps 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from posedistill.models.checkpoint import save_checkpoint
from posedistill.config import config_from_dict
from posedistill.training.losses import FPDLoss
from posedistill.models import build_model
from posedistill.quickstart import embedded_data_dir
from posedistill.io import atomic_write_json
from posedistill.training.teacher_cache import build_teacher_cache
from posedistill.training.teacher_files import training_dataset

ROOT = Path(__file__).resolve().parents[1]
BATCH = 16
SIZE = 128


def bench_pair(teacher_name: str, student_name: str, steps: int, work: Path) -> dict:
    n = BATCH * (steps + 1)
    cfg = config_from_dict({"seed": 0, "model": {"name": student_name},
                            "data": {"dataset": "lspet", "root": str(embedded_data_dir()), "train": f"1-{n}",
                                     "val": "", "input_size": SIZE, "workers": 0},
                            "train": {"epochs": 1, "batch_size": BATCH}})
    torch.manual_seed(0)
    ckpt = work / f"{teacher_name}.pt"
    save_checkpoint(ckpt, {"arch": {"name": teacher_name, "num_joints": 14}, "joint_set": "lsp",
                           "input_size": SIZE, "model": build_model(teacher_name).state_dict()})
    start = time.perf_counter()
    cache = build_teacher_cache(ckpt, cfg, work / f"cache_{teacher_name}", progress=False)
    build_rate = n / (time.perf_counter() - start)  # includes data loading
    teacher = build_model(teacher_name).eval().requires_grad_(False)
    ds, _ = training_dataset(cfg)
    batches = []
    for b in range(steps + 1):
        items = [ds[(0, i)] for i in range(b * BATCH, (b + 1) * BATCH)]
        batches.append({k: torch.stack([it[k] for it in items]) for k in ("image", "target", "target_weight",
                                                                         "index")})
    loss_fn = FPDLoss(0.5)
    students = {}
    for mode in ("online", "cached"):
        torch.manual_seed(0)
        student = build_model(student_name).train()
        students[mode] = (student, torch.optim.Adam(student.parameters(), lr=1e-3))

    def step(mode: str, batch: dict) -> float:
        start = time.perf_counter()
        student, opt = students[mode]
        outputs = student(batch["image"])
        if mode == "online":
            with torch.inference_mode():
                teacher_hm = teacher(batch["image"])[-1].float()
        else:
            teacher_hm = cache.heatmaps(0, batch["index"])
        loss = loss_fn(outputs, batch["target"], batch["target_weight"], teacher_hm.clone())["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - start

    for mode in students:  # warm-up
        step(mode, batches[0])
    spent = {"online": 0.0, "cached": 0.0}
    for batch in batches[1:]:  # interleaved, so that other load on the machine hits both modes alike
        for mode in spent:
            spent[mode] += step(mode, batch)
    rates = {mode: steps * BATCH / t for mode, t in spent.items()}
    return {"teacher": teacher_name, "student": student_name, "online_samples_per_s": rates["online"],
            "cached_samples_per_s": rates["cached"], "speedup": rates["cached"] / rates["online"],
            "cache_build_samples_per_s": build_rate, "cache_bytes_per_sample": 14 * (SIZE // 4) ** 2 * 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default="hg2_64:hg1_32,hg4_128:hg2_64",
                        help="comma-separated teacher:student pairs")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per mode (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "teacher_cache.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = list(os.getloadavg())  # other jobs on the machine make the absolute rates noisy
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in args.pairs.split(","):
            teacher_name, student_name = pair.split(":")
            rows.append(bench_pair(teacher_name, student_name, args.steps, Path(tmp)))
    print(f"FPD student step, batch {BATCH}, input {SIZE}, CPU threads {torch.get_num_threads()} (samples/s)")
    print(f"{'teacher':<10}{'student':<10}{'online':>10}{'cached':>10}{'speedup':>10}{'cache build':>13}")
    for r in rows:
        print(f"{r['teacher']:<10}{r['student']:<10}{r['online_samples_per_s']:>10.1f}"
              f"{r['cached_samples_per_s']:>10.1f}{r['speedup']:>9.2f}x{r['cache_build_samples_per_s']:>13.1f}")
    result = {"command": "python benchmarks/teacher_cache.py " + " ".join(
                  f"--{k} {v}" for k, v in (("pairs", args.pairs), ("steps", args.steps), ("threads", args.threads))
                  if v is not None),
              "device": "cpu", "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "machine": platform.platform(), "batch": BATCH, "input": SIZE,
              "load_average_at_start": load, "load_average_at_end": list(os.getloadavg()),
              "note": "batches preloaded (data loading excluded, identical in both modes); random-init teachers",
              "rows": rows}
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
