"""Training throughput on this CPU: what makes an epoch fastest at a given input size (issue 12).

Measures fwd + bwd + Adam steps of the engine's losses, batch 16, and prints one table per question:

1. precision and layout: fp32 (contiguous), fp32 + channels_last, bf16 autocast + channels_last (only where the
   CPU runs bf16 natively: AVX-512-BF16 or AMX; emulated bf16 on AVX2 was measured 11x slower, so it is skipped
   there unless ``--force-bf16``), for the teacher, the student and the FPD student (student step + online
   teacher forward);
2. threads: one process with 2 threads against two 1-thread processes side by side (teacher + student, and
   student + student), as total samples/s;
3. data loading: the student trained on real LSPET batches (augmentation on) through the engine's loader
   with 0, 1 and 2 workers, against the same steps on a synthetic batch;
4. ``torch.compile`` (``--compile``): compile time and steady-state rate of the student.

Synthetic batches unless said otherwise. Writes benchmarks/results/train_throughput.json with the CPU capability
(``torch.backends.cpu.get_cpu_capability()``), which every figure depends on. Run it on a quiet machine (pause
training runs with ``kill -STOP``): two heavy processes on 2 cores slow each other 10-100x.

    python benchmarks/train_throughput.py [--teacher hg4_128] [--student hg2_64] [--size 128] [--batch 16]
        [--sections precision,threads,loader,compile] [--data ../shared/data/lspet]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from posedistill.io import atomic_write_json
from posedistill.training.losses import FPDLoss, HeatmapLoss
from posedistill.models import build_model
from posedistill.training.precision import cpu_has_fast_bf16

ROOT = Path(__file__).resolve().parents[1]
MODES = {"fp32": (False, False), "fp32_cl": (True, False), "bf16_cl": (True, True)}


def _rate(step, batch: int, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return repeats * batch / (time.perf_counter() - start)


def make_step(role: str, teacher: str, student: str, size: int, batch: int, mode: str, compiled: bool = False):
    """A closure running one training step of ``role`` (teacher | student | student_fpd) on a synthetic batch."""
    channels_last, bf16 = MODES[mode]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    target = torch.rand(batch, 14, size // 4, size // 4)
    weight = torch.ones(batch, 14)
    model = build_model(teacher if role == "teacher" else student).to(memory_format=fmt)
    net = torch.compile(model) if compiled else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    frozen = (build_model(teacher).to(memory_format=fmt).eval().requires_grad_(False)
              if role == "student_fpd" else None)
    gt_loss, fpd_loss = HeatmapLoss(), FPDLoss(0.5)

    def step():
        with amp():
            outputs = net(x)
            if frozen is not None:
                with torch.inference_mode():
                    t = frozen(x)[-1].float()
                loss = fpd_loss(outputs, target, weight, t.clone())["loss"]
            else:
                loss = gt_loss(outputs, target, weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _child(args) -> None:
    """One measurement in this process (used for the side-by-side runs); prints one JSON line."""
    torch.set_num_threads(args.threads)
    step = make_step(args.child, args.teacher, args.student, args.size, args.batch, args.mode)
    rate = _rate(step, args.batch, args.repeats, args.warmup)
    print(json.dumps({"role": args.child, "samples_per_s": rate}))


def _spawn(role: str, threads: int, args, mode: str) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--child", role, "--threads", str(threads), "--mode", mode,
           "--teacher", args.teacher, "--student", args.student, "--size", str(args.size),
           "--batch", str(args.batch), "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def _collect(procs: list[subprocess.Popen]) -> list[float]:
    rates = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise SystemExit(f"benchmark child failed with status {p.returncode}")
        rates.append(json.loads(out.strip().splitlines()[-1])["samples_per_s"])
    return rates


def section_precision(args, modes: list[str]) -> list[dict]:
    rows = []
    for mode in modes:
        for role in ("teacher", "student", "student_fpd"):
            rate = _collect([_spawn(role, args.threads, args, mode)])[0]
            rows.append({"section": "precision", "role": role, "mode": mode, "threads": args.threads,
                         "samples_per_s": rate, "ms_per_image": 1000 / rate})
            print(f"  precision {role:<12}{mode:<9}{rate:8.2f} samples/s {1000 / rate:8.1f} ms/img", flush=True)
    return rows


def section_threads(args, mode: str) -> list[dict]:
    rows = []
    for pair in (("teacher", "student"), ("student", "student"), ("teacher", "teacher")):
        alone = {role: _collect([_spawn(role, 2, args, mode)])[0] for role in set(pair)}
        side = _collect([_spawn(role, 1, args, mode) for role in pair])
        row = {"section": "threads", "pair": "+".join(pair), "mode": mode,
               "one_2thread_process": {r: alone[r] for r in set(pair)},
               "side_by_side_1thread": dict(zip([f"{r}#{i}" for i, r in enumerate(pair)], side))}
        # each side-by-side run advances its job at side/alone of the speed it would have alone with 2 threads: both
        # together do sum(side / alone) jobs' worth of work per unit of time against 1 for one 2-thread run at a time
        row["speedup_side_by_side"] = sum(s / alone[r] for r, s in zip(pair, side))
        rows.append(row)
        print(f"  threads {row['pair']:<16} 2-thread alone: "
              + ", ".join(f"{r} {alone[r]:.2f}" for r in sorted(set(pair)))
              + " | side by side 1-thread: " + ", ".join(f"{s:.2f}" for s in side)
              + f" | side by side does {row['speedup_side_by_side']:.2f}x the work", flush=True)
    return rows


def section_loader(args, mode: str) -> list[dict]:
    from posedistill.data import PoseDataset, build_loader, read_lspet
    from posedistill.models import STRIDE
    from posedistill.models.meta import ModelMeta

    channels_last, _ = MODES[mode]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    records = read_lspet(args.data, indices=range(0, 6500))
    ds = PoseDataset(records, meta=ModelMeta.for_pixels("lsp", args.size, stride=STRIDE), train=True, seed=0, check_images=False)
    torch.set_num_threads(args.threads)
    rows = []
    synthetic = _rate(make_step("student", args.teacher, args.student, args.size, args.batch, mode), args.batch,
                      args.repeats, args.warmup)
    rows.append({"section": "loader", "workers": "synthetic", "samples_per_s": synthetic})
    print(f"  loader  synthetic batch        {synthetic:8.2f} samples/s", flush=True)
    model = build_model(args.student).to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = HeatmapLoss()
    for workers in (0, 1, 2):
        loader = build_loader(ds, batch_size=args.batch, shuffle=True, num_workers=workers, seed=0, drop_last=True)
        it = iter(loader)
        n = args.warmup + args.repeats

        def step():
            batch = next(it)
            loss = loss_fn(model(batch["image"].contiguous(memory_format=fmt)), batch["target"],
                           batch["target_weight"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        assert n <= len(loader)
        rate = _rate(step, args.batch, args.repeats, args.warmup)
        del it, loader
        rows.append({"section": "loader", "workers": workers, "samples_per_s": rate,
                     "fraction_of_synthetic": rate / synthetic})
        print(f"  loader  real data, {workers} worker(s)  {rate:8.2f} samples/s ({rate / synthetic:.0%} of "
              f"synthetic)", flush=True)
    return rows


def section_compile(args, mode: str) -> list[dict]:
    torch.set_num_threads(args.threads)
    eager = _rate(make_step("student", args.teacher, args.student, args.size, args.batch, mode), args.batch,
                  args.repeats, args.warmup)
    step = make_step("student", args.teacher, args.student, args.size, args.batch, mode, compiled=True)
    start = time.perf_counter()
    try:
        step()
        step()
    except Exception as exc:  # inductor needs a C++ compiler; report instead of failing the whole run
        print(f"  compile failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return [{"section": "compile", "error": f"{type(exc).__name__}"}]
    compile_s = time.perf_counter() - start
    rate = _rate(step, args.batch, args.repeats, 0)
    print(f"  compile student eager {eager:.2f} | compiled {rate:.2f} samples/s ({rate / eager:.2f}x), "
          f"compile {compile_s:.0f} s", flush=True)
    return [{"section": "compile", "mode": mode, "eager_samples_per_s": eager, "compiled_samples_per_s": rate,
             "speedup": rate / eager, "compile_s": compile_s}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="hg4_128")
    parser.add_argument("--student", default="hg2_64")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--sections", default="precision,threads,loader,compile")
    parser.add_argument("--force-bf16", action="store_true", help="time bf16 autocast even without native bf16")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lspet")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train_throughput.json")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="fp32_cl", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    capability = torch.backends.cpu.get_cpu_capability()
    native_bf16 = cpu_has_fast_bf16()
    modes = ["fp32", "fp32_cl"] + (["bf16_cl"] if native_bf16 or args.force_bf16 else [])
    best = "bf16_cl" if native_bf16 else "fp32_cl"
    print(f"CPU capability {capability}, native bf16: {native_bf16}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}; {args.teacher} / {args.student} at {args.size}, batch {args.batch}", flush=True)
    sections = args.sections.split(",")
    rows: list[dict] = []
    if "precision" in sections:
        rows += section_precision(args, modes)
    if "threads" in sections:
        rows += section_threads(args, best)
    if "loader" in sections:
        rows += section_loader(args, best)
    if "compile" in sections:
        rows += section_compile(args, best)
    if args.out.is_file():  # keep the other sections' rows of an earlier run (same CPU capability only)
        old = json.loads(args.out.read_text())
        if old.get("cpu_capability") == capability:
            rows = [r for r in old.get("rows", []) if r.get("section") not in sections] + rows
    atomic_write_json(args.out, {"cpu_capability": capability, "native_bf16": native_bf16,
                                 "processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                                 "torch": torch.__version__, "teacher": args.teacher, "student": args.student,
                                 "input_size": args.size, "batch": args.batch, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
