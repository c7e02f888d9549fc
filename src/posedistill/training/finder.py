"""Training the person finder (:mod:`posedistill.models.finder`): ``posedistill train-finder``.

Every epoch draws one augmented canvas per training photo with a person (:mod:`posedistill.data.person_canvases`),
in a fresh random order, and minimises CenterNet's penalty-reduced focal loss on the centre heatmap (alpha 2,
beta 4, per positive) plus L1 on the sub-cell offset and the log size at each person's centre cell. AdamW, a
linear warm-up of ``min(300, total / 10)`` steps then a cosine decay to zero, gradient norm clipped at 10. After
every epoch it logs the losses and the top-1 box IoU on the validation photos (letterboxed whole photos, the
user's case) and writes, each atomically, ``finder.pt`` (the weights; :func:`~posedistill.models.finder.
finder_from_checkpoint` loads it, ``tools/ship_finder.py`` ships it) and ``last.pt`` (weights, optimiser,
schedule, random states: ``resume`` continues exactly where the last finished epoch left off).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..data.person_canvases import PhotoBank, encode_centres, joints_extent, sample_canvas
from ..data.records import PersonRecord, box_iou
from ..data.transforms import normalize_image
from ..inference.finder import finder_input
from ..errors import CheckpointError, ConfigError, DataError
from ..io import atomic_write_json, atomic_write_text
from ..models.checkpoint import safe_load, save_atomic
from ..models.finder import STRIDE, PersonFinder, decode_people, finder_from_checkpoint
from ..models.meta import IMAGE_MEAN, IMAGE_STD

__all__ = ["FinderTraining", "focal_loss", "finder_losses", "train_finder"]


@dataclass(frozen=True)
class FinderTraining:
    """The settings of a finder run (recorded in ``run.json``; a resumed run must have the same)."""

    width: int = 24
    input_size: int = 128
    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    steps_per_epoch: int = 0  # 0: one canvas per training photo with a person

    def __post_init__(self) -> None:
        checks = [(self.width >= 1, "width >= 1"), (self.input_size % 64 == 0 and self.input_size >= 64,
                                                      "input_size a multiple of 64"),
                  (self.epochs >= 1, "epochs >= 1"), (self.batch_size >= 1, "batch_size >= 1"),
                  (self.lr > 0, "lr > 0"), (self.weight_decay >= 0, "weight_decay >= 0"),
                  (self.steps_per_epoch >= 0, "steps_per_epoch >= 0")]
        bad = [text for ok, text in checks if not ok]
        if bad:
            raise ConfigError(f"finder training needs {', '.join(bad)}")


def focal_loss(logits: torch.Tensor, heat: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4) of centre ``logits`` against the Gaussian ``heat``
    (1 at the centres), negatives weighted by ``weight`` (0 around ignored people), per positive."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat >= 1.0 - 1e-6
    pos_loss = -(torch.log(p) * (1 - p) ** 2)[pos].sum()
    neg_loss = -(torch.log(1 - p) * p ** 2 * (1 - heat) ** 4 * weight)[~pos].sum()
    return (pos_loss + neg_loss) / max(int(pos.sum()), 1)


def finder_losses(out: torch.Tensor, heat: torch.Tensor, weight: torch.Tensor, cells: torch.Tensor,
                  regs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(heatmap, offset, size) losses of the finder's output (N, 5, G, G); ``cells`` (P, 2): (image, cell index)
    of each person, ``regs`` (P, 4): their offset and log size targets."""
    l_heat = focal_loss(out[:, 0:1], heat, weight)
    if len(cells) == 0:
        zero = out.sum() * 0.0
        return l_heat, zero, zero
    picked = out.flatten(2)[cells[:, 0], :, cells[:, 1]]  # (P, 5)
    return (l_heat, F.l1_loss(torch.sigmoid(picked[:, 1:3]), regs[:, 0:2]),
            F.l1_loss(picked[:, 3:5], regs[:, 2:4]))


def _batch(bank: PhotoBank, indices: Sequence[int], size: int, rng: np.random.Generator):
    xs, heats, weights, cells, regs = [], [], [], [], []
    for b, i in enumerate(indices):
        canvas, targets, ignores = sample_canvas(bank, int(i), size, rng)
        h, w, c, r = encode_centres(targets, ignores, size, STRIDE)
        xs.append(normalize_image(canvas, mean=IMAGE_MEAN, std=IMAGE_STD))
        heats.append(h)
        weights.append(w)
        cells += [(b, k) for k in c]
        regs += r
    return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(heats))[:, None],
            torch.from_numpy(np.stack(weights))[:, None], torch.tensor(cells, dtype=torch.long).reshape(-1, 2),
            torch.tensor(np.array(regs, np.float32).reshape(-1, 4)))


def _validation(records: Sequence[PersonRecord], size: int) -> tuple[np.ndarray, list[list[float]]]:
    """The validation photos letterboxed and normalised (N, 3, S, S), and each person's box on the canvas."""
    inputs, boxes = [], []
    for rec in records:
        if (np.asarray(rec.visible) > 0).sum() < 2:
            continue
        image = cv2.imread(str(rec.image), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"{rec.image}: unreadable image")
        x, scale, offset = finder_input(image, size)
        b = joints_extent(rec.joints, rec.visible)
        inputs.append(x)
        boxes.append([b[0] * scale + offset[0], b[1] * scale + offset[1], b[2] * scale, b[3] * scale])
    return (np.stack(inputs) if inputs else np.zeros((0, 3, size, size), np.float32)), boxes


@torch.inference_mode()
def _box_iou_of(model: PersonFinder, inputs: np.ndarray, boxes: list[list[float]], size: int,
                batch: int = 100) -> tuple[float, float]:
    """Mean top-1 IoU with the true boxes, and the share with IoU >= 0.5."""
    if not len(inputs):
        return float("nan"), float("nan")
    was_training = model.training
    model.eval()
    found = []
    for s in range(0, len(inputs), batch):
        out = model(torch.from_numpy(inputs[s:s + batch])).numpy()
        found += [people[0][1] for people in decode_people(out, top_k=1, input_size=size)]
    model.train(was_training)
    iou = np.array([box_iou(f, b) for f, b in zip(found, boxes)])
    return float(iou.mean()), float((iou >= 0.5).mean())


def train_finder(train: Sequence[PersonRecord], val: Sequence[PersonRecord], out: str | Path,
                 settings: FinderTraining = FinderTraining(), *, resume: bool = False, init: str | Path | None = None,
                 progress: bool = True, log: Callable[[str], Any] = print) -> dict[str, float]:
    """Train a finder on ``train``'s photos into ``out`` (see the module docstring); returns the last epoch's
    losses and validation IoU. ``init``: start from a finder checkpoint's weights (a new schedule); ``resume``:
    continue from ``out/last.pt`` (its settings must be these)."""
    out = Path(out)
    s = settings
    run_file = out / "run.json"
    if resume:
        if not (out / "last.pt").is_file():
            raise CheckpointError(f"{out / 'last.pt'}: nothing to resume")
        recorded = json.loads(run_file.read_text()).get("settings") if run_file.is_file() else None
        if recorded != asdict(s):
            raise ConfigError(f"{run_file}: the run was started with other settings ({recorded}); resume with the "
                              "same ones")
    elif (out / "last.pt").exists():
        raise ConfigError(f"{out}: holds a finder run already; resume it (--resume) or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(s.seed)
    bank = PhotoBank(train)
    val_inputs, val_boxes = _validation(val, s.input_size)
    model = PersonFinder(s.width, s.input_size)
    if init is not None and not resume:
        start = finder_from_checkpoint(init)
        if (start.width, start.input_size) != (s.width, s.input_size):
            raise ConfigError(f"{init}: a width-{start.width}, {start.input_size}-input finder, not width "
                              f"{s.width} at {s.input_size}")
        model.load_state_dict(start.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    steps = s.steps_per_epoch or max(1, len(bank.people) // s.batch_size)
    total = steps * s.epochs
    warm = max(1, min(300, total // 10))

    def rate(k: int) -> float:
        return (k + 1) / warm if k < warm else 0.5 * (1 + math.cos(math.pi * (k - warm) / max(1, total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)
    rng = np.random.default_rng(s.seed)
    first, history = 0, []
    if resume:
        ck = safe_load(out / "last.pt")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        first, history = int(ck["epoch"]) + 1, list(ck.get("history", []))
        log(f"train-finder: resumed after epoch {first}")
    else:
        atomic_write_json(run_file, {"settings": asdict(s), "train_photos": len(bank),
                                     "with_person": int(len(bank.people)), "val_photos": len(val_boxes),
                                     "init": str(init) if init else None})
        log(f"train-finder: {len(bank.people)} training photos with a person, {steps} steps an epoch, "
            f"{len(val_boxes)} validation photos; output {out}")
    model.train()
    result: dict[str, float] = {}
    for epoch in range(first, s.epochs):
        t0 = time.perf_counter()
        order = rng.permutation(bank.people)
        if len(order) < steps * s.batch_size:  # a short list (a few photos, or --steps): cycle through it
            order = np.resize(order, steps * s.batch_size)
        sums = np.zeros(3)
        for k in tqdm(range(steps), desc=f"epoch {epoch + 1}/{s.epochs}", disable=not progress, leave=False):
            x, heat, weight, cells, regs = _batch(bank, order[k * s.batch_size:(k + 1) * s.batch_size],
                                                  s.input_size, rng)
            parts = finder_losses(model(x), heat, weight, cells, regs)
            loss = parts[0] + parts[1] + parts[2]
            if not torch.isfinite(loss):
                raise ConfigError(f"train-finder: the loss is {loss.item()} at epoch {epoch + 1}, step {k + 1}; "
                                  "lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            sums += [p.item() for p in parts]
        sums /= steps
        iou, hit = _box_iou_of(model, val_inputs, val_boxes, s.input_size)
        state = {"model": model.state_dict(), "width": s.width, "input_size": s.input_size, "epoch": epoch}
        save_atomic(out / "finder.pt", state)
        result = {"epoch": epoch + 1, "loss_heat": float(sums[0]), "loss_offset": float(sums[1]),
                  "loss_size": float(sums[2]), "val_iou": iou, "val_iou_over_half": hit,
                  "lr": float(sched.get_last_lr()[0]), "seconds": time.perf_counter() - t0}
        history.append(result)
        save_atomic(out / "last.pt", {**state, "opt": opt.state_dict(), "sched": sched.state_dict(),
                                      "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                                      "history": history})
        atomic_write_text(out / "log.jsonl", "".join(json.dumps(h) + "\n" for h in history))
        log(f"epoch {epoch + 1}/{s.epochs} | loss heat {sums[0]:.3f} offset {sums[1]:.3f} size {sums[2]:.3f} | "
            f"val IoU {iou:.3f}, >= 0.5 {100 * hit:.1f} % | {result['seconds']:.0f} s")
    return result
