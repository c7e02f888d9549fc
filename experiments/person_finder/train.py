#!/usr/bin/env python
"""Train the person finder on LSPET train photos (augmented canvases, see data.py); one thread by default.

Every epoch draws one canvas per training photo, logs one line (losses; top-1 box IoU on the LSPET val photos and
on the val scenes of benchmarks/scenes.py) and writes ``last.pt`` (model, optimiser, scheduler, RNG, epoch) and
``finder.pt`` (the model alone, BN folded later at load time). ``--resume`` continues from ``last.pt``.

    OMP_NUM_THREADS=1 nohup python experiments/person_finder/train.py --out /tmp/pf_run --epochs 14 > /tmp/pf.log &
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from data import PhotoCache, encode, sample, to_input  # noqa: E402
from model import STRIDE, PersonFinder, decode  # noqa: E402
from valsets import box_iou, val_sets  # noqa: E402


def focal_loss(logits: torch.Tensor, heat: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), per positive."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat >= 1.0 - 1e-6
    pos_loss = -(torch.log(p) * (1 - p) ** 2)[pos].sum()
    neg_loss = -(torch.log(1 - p) * p ** 2 * (1 - heat) ** 4 * weight)[~pos].sum()
    return (pos_loss + neg_loss) / max(int(pos.sum()), 1)


def make_batch(cache, indices, size, rng):
    xs, heats, weights, cells, regs = [], [], [], [], []
    for b, i in enumerate(indices):
        canvas, targets, ignores = sample(cache, int(i), size, rng)
        h, w, c, r = encode(targets, ignores, size, STRIDE)
        xs.append(to_input(canvas))
        heats.append(h)
        weights.append(w)
        cells += [(b, k) for k in c]
        regs += r
    return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(heats))[:, None],
            torch.from_numpy(np.stack(weights))[:, None], torch.tensor(cells, dtype=torch.long),
            torch.tensor(np.array(regs), dtype=torch.float32))


def losses(out, heat, weight, cells, regs):
    l_heat = focal_loss(out[:, 0:1], heat, weight)
    flat = out.flatten(2)  # (N, 5, G*G)
    picked = flat[cells[:, 0], :, cells[:, 1]]  # (P, 5)
    l_off = F.l1_loss(torch.sigmoid(picked[:, 1:3]), regs[:, 0:2])
    l_size = F.l1_loss(picked[:, 3:5], regs[:, 2:4])
    return l_heat, l_off, l_size


@torch.inference_mode()
def evaluate(model, inputs, boxes, size, batch=100):
    model.eval()
    found = []
    for s in range(0, len(inputs), batch):
        out = model(torch.from_numpy(inputs[s:s + batch])).numpy()
        found += [d[0][1] for d in decode(out, top_k=1, input_size=size)]
    iou = np.array([box_iou(f, b) for f, b in zip(found, boxes)])
    model.train()
    return float(iou.mean()), float((iou >= 0.5).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/lspet"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/pf_run"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/pf_cache_train.npz"))
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=0, help="steps per epoch (0: one canvas per photo; a smoke test)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", type=Path, default=None, help="start from these finder weights (a new schedule)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    log = open(args.out / "log.txt", "a")

    def say(msg: str) -> None:
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    cache = PhotoCache(args.data, "train", args.cache)
    usable = np.array([i for i in range(len(cache)) if cache.usable(i)])
    vsets = val_sets(args.data, args.size)
    model = PersonFinder(args.width, args.size)
    if args.init is not None:
        model.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=False)["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    steps_per_epoch = args.steps or len(usable) // args.batch
    total = steps_per_epoch * args.epochs
    warm = min(300, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: (k + 1) / warm if k < warm else 0.5 * (1 + math.cos(math.pi * (k - warm) / (total - warm))))
    start_epoch = 0
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    if args.resume and (args.out / "last.pt").exists():
        ck = torch.load(args.out / "last.pt", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        start_epoch = ck["epoch"] + 1
        say(f"resumed after epoch {ck['epoch']}")
    else:
        say(f"args {json.dumps({k: str(v) for k, v in vars(args).items()})}; {len(usable)} photos, "
            f"{steps_per_epoch} steps/epoch")
    model.train()
    for epoch in range(start_epoch, args.epochs):
        t0 = time.time()
        order = rng.permutation(usable)
        sums = np.zeros(3)
        t_data = 0.0
        for k in range(steps_per_epoch):
            td = time.time()
            x, heat, weight, cells, regs = make_batch(cache, order[k * args.batch:(k + 1) * args.batch],
                                                      args.size, rng)
            t_data += time.time() - td
            out = model(x)
            lh, lo, ls = losses(out, heat, weight, cells, regs)
            loss = lh + lo + ls
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            sums += [lh.item(), lo.item(), ls.item()]
        sums /= steps_per_epoch
        metrics = {name: evaluate(model, inp, boxes, args.size) for name, (inp, boxes) in vsets.items()}
        state = {"model": model.state_dict(), "width": args.width, "input_size": args.size, "epoch": epoch}
        torch.save(state, args.out / "finder.tmp")
        (args.out / "finder.tmp").replace(args.out / "finder.pt")
        torch.save({**state, "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state()}, args.out / "last.tmp")
        (args.out / "last.tmp").replace(args.out / "last.pt")
        say(f"epoch {epoch + 1}/{args.epochs} loss heat {sums[0]:.3f} off {sums[1]:.3f} size {sums[2]:.3f} | "
            + " | ".join(f"{n} IoU {m[0]:.3f} >=0.5 {100 * m[1]:.1f}%" for n, m in metrics.items())
            + f" | lr {sched.get_last_lr()[0]:.2e} | {time.time() - t0:.0f} s (data {t_data:.0f} s)")


if __name__ == "__main__":
    main()
