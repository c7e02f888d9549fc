#!/usr/bin/env python
"""Draw a model's predictions on a few LSPET test-slice photos, as a user would see them, in one picture.

For each photo, left: ``posedistill predict PHOTO`` without a box (the person is localised, person scorer beside
the weights when there is one); right: the prediction with the ground-truth box (``--bbox``, the box of the
visible joints), each captioned with its PCK@0.2 on that photo (torso-normalised, as the evaluation). The tiles
are stacked into one JPEG for ``docs/``.

    python tools/draw_test_predictions.py --model base --out docs/predictions_base.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from posedistill.data.scenes import default_lspet_root, joints_box, lspet_people

from posedistill.data.images import load_image
from posedistill.evaluation import joint_errors
from posedistill.inference.predictor import Predictor
from posedistill.models.pretrained import default_weights
from posedistill.io import atomic_open

HEIGHT = 360  # pixels per tile row


def photo_pck(keypoints: np.ndarray, rec, norm: float) -> float:
    err = joint_errors(keypoints[None], rec.joints[None], rec.visible[None], np.array([norm]))[0]
    visible = rec.visible > 0
    return 100.0 * float(np.mean(err[visible] <= 0.2))


def caption(image: np.ndarray, text: str) -> np.ndarray:
    scale = HEIGHT / image.shape[0]
    out = cv2.resize(image, (max(1, round(image.shape[1] * scale)), HEIGHT), interpolation=cv2.INTER_AREA)
    lines = text.split("\n")
    cv2.rectangle(out, (0, 0), (out.shape[1], 6 + 16 * len(lines)), (0, 0, 0), -1)
    for i, line in enumerate(lines):
        cv2.putText(out, line, (4, 16 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="a checkpoint or ONNX file (default: --model's)")
    parser.add_argument("--model", default=None, help="a shipped student by name (default: the default one)")
    parser.add_argument("--images", default=None,
                        help="comma list of LSPET test image names (default: the first three with a visible torso, "
                             "so that nothing is picked by its result)")
    parser.add_argument("--data", type=Path, default=None, help="LSPET root (default ../shared/data/lspet)")
    parser.add_argument("--out", type=Path, required=True, help="JPEG to write")
    args = parser.parse_args()

    weights = args.weights or default_weights(model=args.model)
    predictor = Predictor(weights, threads=2)  # localises like `posedistill predict` without a box
    by_name = {Path(r.image).stem: r for r in lspet_people(args.data or default_lspet_root(), "test", need_torso=True)}
    rows = []
    names = args.images.split(",") if args.images else list(by_name)[:3]
    for name in names:
        if name not in by_name:
            raise SystemExit(f"{name}: not an LSPET test-slice image with a visible torso")
        rec = by_name[name]
        image = load_image(rec.image)
        norm = float(rec.norm)  # the torso, as in the evaluation
        tiles = []
        person = predictor(image)[0]
        tiles.append(caption(person.draw(image),
                             f"{name}, no box\n(localised): PCK {photo_pck(person.keypoints[0], rec, norm):.0f}"))
        given = predictor(image, [joints_box(rec.joints, rec.visible)])
        tiles.append(caption(given.draw(image),
                             f"{name}, true box\n(--bbox): PCK {photo_pck(given.keypoints[0], rec, norm):.0f}"))
        rows.append(np.hstack(tiles))
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([cv2.copyMakeBorder(r, 0, 4, 0, width - r.shape[1], cv2.BORDER_CONSTANT, value=(255,) * 3)
                       for r in rows])
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise SystemExit(f"{args.out}: could not encode the picture")
    with atomic_open(args.out) as f:
        f.write(data.tobytes())
    print(f"wrote {args.out} ({Path(weights).name}, {len(rows)} photos)")


if __name__ == "__main__":
    main()
