"""How good are the FPD teacher's targets as the student receives them? (issue 26 section 2; docs/experiments.md)

Each kind of target is decoded like a prediction and scored with PCK@0.2 against the ground truth, on people the
teacher never trained on (the validation split), each in the augmented crop a student of ``--config`` would get
(epoch 0; negatives off: they hold no joints):

* augmented: the paper's scheme, the teacher run on the student's augmented crop (resized to the teacher's input
  size when ``distill.teacher_input_size`` says so), single pass or flip-averaged;
* warped: the teacher run once on the person's plain crop at its own input size, warped into the augmented crop
  (:mod:`posedistill.training.warped_teacher`), single pass or flip-averaged;
* ground truth: the codec's own targets (the ceiling of the decoding).

    python experiments/warped_targets/target_quality.py --teacher runs/lspet8800/teacher_192/best.pt \
        --config configs/lspet8800/fpd_tiny.yaml --out experiments/warped_targets/target_quality.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from posedistill.codec import crop_to_image
from posedistill.config import load_config
from posedistill.data import PoseDataset
from posedistill.data.splits import read_split
from posedistill.evaluation import PCK
from posedistill.inference.network import predict_heatmaps
from posedistill.models.loading import load_pose_model
from posedistill.training.precision import autocast, resolve_amp
from posedistill.training.teacher_model import TeacherView
from posedistill.training.warped_teacher import warp_heatmaps


def draw(path: Path, images: torch.Tensor, heat: dict[str, torch.Tensor], meta) -> None:
    """One row per sample: the augmented crop, then each kind of target (all joints' maximum) over it."""
    import cv2

    mean, std = np.asarray(meta.mean), np.asarray(meta.std)
    rows = []
    for n in range(images.shape[0]):
        crop = np.clip((images[n].permute(1, 2, 0).numpy() * std + mean) * 255, 0, 255).astype(np.uint8)
        crop = np.ascontiguousarray(crop[:, :, ::-1])  # the network's RGB back to OpenCV's BGR
        tiles = [crop]
        for kind, hm in heat.items():
            peak = np.clip(hm[n].max(0).values.numpy(), 0, 1)
            colour = cv2.applyColorMap((cv2.resize(peak, crop.shape[:2][::-1]) * 255).astype(np.uint8),
                                       cv2.COLORMAP_JET)
            tile = cv2.addWeighted(crop, 0.5, colour, 0.5, 0)
            cv2.putText(tile, kind, (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    cv2.imwrite(str(path), np.concatenate(rows, axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--config", required=True, help="the student's experiment YAML (its crops and augmentation)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--epoch", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--draw", type=Path, default=None,
                        help="also draw the first --draw-count samples' crops with each kind of target (a PNG)")
    parser.add_argument("--draw-count", type=int, default=4)
    parser.add_argument("--limit", type=int, default=0, help="first N people only (0: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    teacher = load_pose_model(args.teacher, backend="torch")
    model, tmeta = teacher.module.eval(), teacher.meta
    records = read_split(cfg.data.dataset, cfg.data.root, args.split)
    if args.limit:
        records = records[: args.limit]
    smeta = dataclasses.replace(tmeta, input_size=cfg.data.input_size, sigma=cfg.data.sigma)
    augment = dataclasses.replace(cfg.data.augment, negative_prob=0.0)
    student = PoseDataset(records, meta=smeta, train=True, augment=augment, seed=cfg.seed)
    plain = PoseDataset(records, meta=tmeta, train=False)
    flip_index = tuple(student.joint_set.flip_index)
    size, grid = cfg.data.input_size, cfg.data.input_size // tmeta.stride
    codec = student.codec
    amp = resolve_amp(cfg.train.amp, torch.device("cpu"))
    kinds = ("ground truth", "augmented", "augmented, flip", "warped", "warped, flip")
    pred = {k: np.zeros((len(records), len(flip_index), 2)) for k in kinds}
    seconds = dict.fromkeys(kinds, 0.0)
    for start in range(0, len(records), args.batch_size):
        idx = range(start, min(start + args.batch_size, len(records)))
        s = [student[(args.epoch, i)] for i in idx]
        p = [plain[i] for i in idx]
        images = torch.stack([x["image"] for x in s])
        matrices = torch.stack([x["matrix"] for x in s])
        flipped = torch.stack([x["flipped"] for x in s])
        heat = {"ground truth": torch.stack([x["target"] for x in s])}
        for flip in (False, True):
            name = ", flip" if flip else ""
            t0 = time.perf_counter()
            with autocast(amp, torch.device("cpu")):
                view = TeacherView(grid, cfg.distill.teacher_input_size, flip_index if flip else None)
                heat["augmented" + name] = view(model, images).float()
            t1 = time.perf_counter()
            with torch.inference_mode(), autocast(amp, torch.device("cpu")):
                own = predict_heatmaps(model, torch.stack([x["image"] for x in p]),
                                       flip_index=flip_index if flip else None).float()
            heat["warped" + name] = warp_heatmaps(own, torch.stack([x["matrix"] for x in p]), tmeta.input_size,
                                                  matrices, size, grid, flipped, flip_index)
            t2 = time.perf_counter()
            seconds["augmented" + name] += t1 - t0
            seconds["warped" + name] += t2 - t1
        if args.draw is not None and start == 0:
            draw(args.draw, images[: args.draw_count], heat, smeta)
        for kind, hm in heat.items():
            coords, _ = codec.decode(hm.numpy())
            joints = crop_to_image(coords, matrices.numpy())
            for row, (i, f) in enumerate(zip(idx, flipped.tolist())):
                # a mirrored crop's channel j holds joint flip_index[j]: put it back in the record's order
                pred[kind][i][np.asarray(flip_index) if f else slice(None)] = joints[row]
        print(f"{idx.stop}/{len(records)}", flush=True)
    gt = np.stack([r.joints for r in records])
    vis = np.stack([r.visible for r in records])
    norm = np.array([r.norm for r in records])
    rows = []
    for kind in kinds:
        result = PCK(0.2)(pred[kind], gt, vis, norm)
        per = 1000 * seconds[kind] / len(records) if kind != "ground truth" else 0.0
        rows.append({"targets": kind, "pck": result["mean"], "teacher_ms_per_person_per_epoch": per})
    print(f"\n{'targets':<18} {'PCK@0.2':>8} {'teacher ms/person/epoch':>24}")
    for row in rows:
        print(f"{row['targets']:<18} {row['pck']:8.1f} {row['teacher_ms_per_person_per_epoch']:24.1f}")
    print("(warped: paid once per person, not per epoch)")
    if args.out:
        args.out.write_text(json.dumps({"teacher": args.teacher, "config": args.config, "split": args.split,
                                        "epoch": args.epoch, "people": len(records),
                                        "cpu": torch.backends.cpu.get_cpu_capability(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
