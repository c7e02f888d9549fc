"""Data loading throughput vs one student training step: does loading limit training?

Reports samples/s of the training pipeline (LSPET train split, augmentation on, batch 16) at 256 and 128 input with
0 and 2 workers, beside samples/s of one student training step (``build_model("hg4_128")``, forward + backward +
Adam, batch 16, MSE on every stack) on this machine. Prints a table, writes benchmarks/results/data_throughput.json.

    python benchmarks/data_throughput.py [--data ../shared/data] [--batches 8] [--steps 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from posedistill.data import PoseDataset, build_loader, lspet_split
from posedistill.models import build_model
from posedistill.models import STRIDE
from posedistill.models.meta import ModelMeta

ROOT = Path(__file__).resolve().parents[1]
BATCH = 16


def loader_rate(records, size: int, workers: int, batches: int) -> float:
    ds = PoseDataset(records, meta=ModelMeta.for_pixels("lsp", size, stride=STRIDE), train=True, seed=0, check_images=False)
    loader = build_loader(ds, batch_size=BATCH, shuffle=True, num_workers=workers, seed=0, drop_last=True)
    it = iter(loader)
    next(it)  # warm-up (worker start)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    rate = batches * BATCH / (time.perf_counter() - t)
    del it, loader
    return rate


def train_rate(size: int, steps: int, device: str) -> float:
    torch.manual_seed(0)
    model = build_model("hg4_128", num_joints=14).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(BATCH, 3, size, size, device=device)
    y = torch.rand(BATCH, 14, size // 4, size // 4, device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = sum(torch.nn.functional.mse_loss(o, y) for o in model(x))
        loss.backward()
        opt.step()

    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * BATCH / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("POSEDISTILL_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--batches", type=int, default=8, help="timed batches per loader setting")
    ap.add_argument("--steps", type=int, default=1, help="timed training steps per input size")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data_throughput.json"))
    args = ap.parse_args()
    records = lspet_split(Path(args.data) / "lspet", "train")
    rows = []
    for size in (256, 128):
        train = train_rate(size, args.steps, args.device)
        for workers in (0, 2):
            data = loader_rate(records, size, workers, args.batches)
            rows.append({"input": size, "workers": workers, "data_samples_per_s": data,
                         "train_step_samples_per_s": train, "data_limits_training": data < train})
    print(f"data throughput (LSPET train, augmentation on, batch {BATCH}) vs hg4_128 training step "
          f"on {args.device}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"{'input':>5s} {'workers':>7s} {'data samples/s':>15s} {'train samples/s':>16s}  data limits training?")
    for r in rows:
        print(f"{r['input']:5d} {r['workers']:7d} {r['data_samples_per_s']:15.1f} {r['train_step_samples_per_s']:16.1f}"
              f"  {'yes' if r['data_limits_training'] else 'no'}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "command": "python benchmarks/data_throughput.py", "device": args.device, "cpus": os.cpu_count(),
        "torch": torch.__version__, "machine": platform.platform(), "batch": BATCH, "batches": args.batches,
        "steps": args.steps, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
