"""Pack LSPET into person crops small enough to travel to a GPU machine (issue 12, the paper's 256-input setting).

The GPU machine receives the working tree plus at most 64 MiB, and LSPET's 7,500 images are 122 MB. Every
image is cut down to a square around its person, with the joints moved alike, and written in LSPET's own layout
(``images/imNNNNN.jpg`` + ``joints.mat`` (14, 3, N), 1 = visible), so ``--dataset lspet`` reads the pack as it
reads LSPET: the same protocol slices, the same person box (``box_from_joints`` is translation and scale
equivariant) and the same torso-normalised PCK.

* Crop side = ``margin`` x the padded person box: ``--train-margin`` (default 1.4) for the training slice, so that
  scale (0.75-1.25) and rotation (+-30 deg) augmentation mostly stay inside the pack, and ``--eval-margin``
  (default 1.05) for validation and test, which are cropped at the box itself.
* Boxes up to ``--max-box`` pixels (default 256, the model input: 95 % of LSPET boxes are under 195 px) are cut at
  whole-pixel offsets with no resampling, so a crop holds the original pixels; larger ones are shrunk with
  INTER_AREA to ``--max-box``. Outside the image is black, as in training crops.
* Pixels are stored WebP-compressed (``--quality``, default 80) under the ``.jpg`` names the LSPET reader expects:
  OpenCV and posedistill's image checks identify a file by its content, not its name.
* ``--chunks N`` spreads the images over N folders ``OUT/chunk{i}/images`` of about equal size (``joints.mat``
  and ``sources.csv`` in chunk 0), each small enough to travel beside the working tree; the machine merges them.

    python experiments/make_lspet_crops.py --source ../shared/data/lspet --out .gpu/lspet_crops --chunks 3
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from posedistill.data.readers import LSPET_SPLITS
from posedistill.data.records import box_from_joints


def crop(image: np.ndarray, center: np.ndarray, side: float, margin: float, max_box: int,
         quality: int) -> tuple[bytes, float, np.ndarray]:
    """Crop ``image`` around ``center``; return the WebP bytes and the (scale, offset) that map image pixels to
    crop pixels (``crop = scale * image + offset``)."""
    f = min(1.0, max_box / side)
    out = int(math.ceil(side * margin * f))
    if f == 1.0:  # whole-pixel cut: the crop holds the original pixels
        x0, y0 = int(round(center[0] - out / 2)), int(round(center[1] - out / 2))
        h, w = image.shape[:2]
        pad = max(0, -x0, -y0, x0 + out - w, y0 + out - h)
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        piece = padded[y0 + pad:y0 + pad + out, x0 + pad:x0 + pad + out]
        offset = np.array([-x0, -y0], dtype=np.float64)
    else:  # shrink about the box centre: pixel centres map as in codec.get_affine_transform
        offset = np.array([(out - 1) / 2.0 - f * center[0], (out - 1) / 2.0 - f * center[1]])
        m = np.array([[f, 0.0, offset[0]], [0.0, f, offset[1]]])
        piece = cv2.warpAffine(image, m, (out, out), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=(0, 0, 0))
    ok, buf = cv2.imencode(".webp", piece, [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise RuntimeError("WebP encoding failed")
    return buf.tobytes(), f, offset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", type=Path, required=True, help="LSPET directory (images/ and joints.mat)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train-margin", type=float, default=1.4)
    ap.add_argument("--eval-margin", type=float, default=1.05)
    ap.add_argument("--max-box", type=int, default=256)
    ap.add_argument("--quality", type=int, default=80)
    ap.add_argument("--chunks", type=int, default=1)
    ap.add_argument("--count", type=int, default=9800, help="images im00001..imCOUNT (the protocol's 9,800)")
    args = ap.parse_args()

    joints = scipy.io.loadmat(str(args.source / "joints.mat"))["joints"].astype(np.float64)[:, :, :args.count]
    train = {i for start, stop in LSPET_SPLITS["train"] for i in range(start, stop)}
    packed: list[bytes] = []
    new = joints.copy()
    rows = []
    for k in range(args.count):
        name = f"im{k + 1:05d}.jpg"
        image = cv2.imread(str(args.source / "images" / name), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"{args.source / 'images' / name}: cannot read image")
        xy, visible = joints[:, :2, k], joints[:, 2, k] == 1
        center, side = box_from_joints(xy, visible)
        margin = args.train_margin if k in train else args.eval_margin
        data, f, offset = crop(image, center, side, margin, args.max_box, args.quality)
        new[:, :2, k] = xy * f + offset
        packed.append(data)
        rows.append((name, f"{f:.6f}", f"{offset[0]:.3f}", f"{offset[1]:.3f}"))
        if (k + 1) % 500 == 0:
            print(f"{k + 1}/{args.count} images, {sum(map(len, packed)) / 2**20:.1f} MiB")

    if args.out.exists():
        shutil.rmtree(args.out)
    total = sum(map(len, packed))
    bounds, acc, chunk = [], 0, 0
    for data in packed:  # chunk i holds the images whose cumulative size falls in its share
        bounds.append(min(int(acc * args.chunks / total), args.chunks - 1))
        acc += len(data)
    for i in range(args.chunks):
        (args.out / f"chunk{i}" / "images").mkdir(parents=True)
    for k, (data, chunk) in enumerate(zip(packed, bounds)):
        (args.out / f"chunk{chunk}" / "images" / f"im{k + 1:05d}.jpg").write_bytes(data)
    scipy.io.savemat(str(args.out / "chunk0" / "joints.mat"), {"joints": new})
    with open(args.out / "chunk0" / "sources.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "scale", "offset_x", "offset_y"])  # crop = scale * LSPET pixel + offset
        w.writerows(rows)
    for i in range(args.chunks):
        size = sum(p.stat().st_size for p in (args.out / f"chunk{i}").rglob("*") if p.is_file())
        print(f"{args.out / f'chunk{i}'}: {size / 2**20:.1f} MiB")
    print(f"total {total / 2**20:.1f} MiB of images")


if __name__ == "__main__":
    main()
