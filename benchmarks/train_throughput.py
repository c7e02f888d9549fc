"""Training throughput on this CPU: teacher, student, and FPD student (student step + online teacher forward).

Synthetic batches (data loading is measured by benchmarks/data_throughput.py), the engine's losses and
optimiser. Reports samples/s and the online teacher's overhead as the ratio FPD-step time / student-step time,
for fp32 and for channels_last + bf16 autocast, at each input size. Writes benchmarks/results/train_throughput.json.

    python benchmarks/train_throughput.py [--teacher hg8_256] [--student hg4_128] [--sizes 256,128] [--batch 8]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from posedistill.io import atomic_write_json
from posedistill.losses import FPDLoss, HeatmapLoss
from posedistill.models import build_model


def _steps_per_s(step, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return repeats / (time.perf_counter() - start)


def measure(teacher_name: str, student_name: str, size: int, batch: int, fast: bool, repeats: int, warmup: int):
    fmt = torch.channels_last if fast else torch.contiguous_format
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if fast else nullcontext
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    target = torch.rand(batch, 14, size // 4, size // 4)
    weight = torch.ones(batch, 14)
    teacher = build_model(teacher_name).to(memory_format=fmt)
    student = build_model(student_name).to(memory_format=fmt)
    frozen = build_model(teacher_name).to(memory_format=fmt).eval().requires_grad_(False)
    gt_loss, fpd_loss = HeatmapLoss(), FPDLoss(0.5)

    def train_step(model):
        opt = torch.optim.Adam(model.parameters(), lr=2.5e-4)

        def step():
            with amp():
                loss = gt_loss(model(x), target, weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    opt_s = torch.optim.Adam(student.parameters(), lr=2.5e-4)

    def fpd_step():
        with amp():
            with torch.inference_mode():
                t = frozen(x)[-1].float()
            loss = fpd_loss(student(x), target, weight, t.clone())["loss"]
        opt_s.zero_grad(set_to_none=True)
        loss.backward()
        opt_s.step()

    rows = []
    for role, step in (("teacher", train_step(teacher)), ("student", train_step(student)), ("student_fpd", fpd_step)):
        rate = _steps_per_s(step, repeats, warmup) * batch
        rows.append({"role": role, "model": teacher_name if role == "teacher" else student_name, "input_size": size,
                     "batch": batch, "mode": "channels_last+bf16" if fast else "fp32", "samples_per_s": rate})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="hg8_256")
    parser.add_argument("--student", default="hg4_128")
    parser.add_argument("--sizes", default="256,128")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--modes", default="fp32,fast", help="fp32 and/or fast (channels_last + bf16 autocast)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_throughput.json")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for mode in args.modes.split(","):
            rows += measure(args.teacher, args.student, size, args.batch, mode == "fast", args.repeats, args.warmup)
    print(f"{'role':<12}{'model':<10}{'input':>6}{'mode':>20}{'samples/s':>11}{'FPD/student time':>18}")
    for r in rows:
        ratio = ""
        if r["role"] == "student_fpd":
            base = next(q for q in rows if q["role"] == "student" and q["input_size"] == r["input_size"]
                        and q["mode"] == r["mode"])
            r["online_teacher_overhead"] = base["samples_per_s"] / r["samples_per_s"]
            ratio = f"{r['online_teacher_overhead']:.2f}x"
        print(f"{r['role']:<12}{r['model']:<10}{r['input_size']:>6}{r['mode']:>20}{r['samples_per_s']:>11.2f}{ratio:>18}")
    atomic_write_json(args.out, {"threads": torch.get_num_threads(), "torch": torch.__version__, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
