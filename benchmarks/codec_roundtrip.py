"""Heatmap codec round trip on real LSP / LSPET joints (no images needed).

original joints -> crop (affine, optionally with training augmentation incl. flip) -> Gaussian heatmaps at 1/4
resolution -> decode (argmax + quarter-pixel shift, or DARK) -> inverse affine -> original image.
Errors are over visible joints inside the crop, in heatmap pixels (image error x heatmap size / crop box side) and
in original-image pixels. Prints a table and writes benchmarks/results/codec_roundtrip.json.

    python benchmarks/codec_roundtrip.py [--data ../shared/data] [--input-size 256] [--sigma 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from posedistill.codec import HeatmapCodec, crop_to_image, get_affine_transform
from posedistill.data import AugmentConfig, read_lsp, read_lspet
from posedistill.data.transforms import Augmentation, flip_matrix, sample_augmentation
from posedistill.skeleton import LSP

ROOT = Path(__file__).resolve().parents[1]


def run(records, codec: HeatmapCodec, augment: bool, seed: int = 0) -> dict:
    size = codec.input_size[0]
    hm_w = codec.heatmap_size[0]
    flip_index = np.asarray(LSP.flip_index)
    cfg = AugmentConfig()
    errors: dict[str, list] = {"quarter": [], "dark": []}
    times = {"quarter": 0.0, "dark": 0.0}
    n_people = 0
    for start in range(0, len(records), 250):  # chunks keep memory small
        _chunk(records[start:start + 250], start, codec, cfg, augment, seed, size, hm_w, flip_index, errors, times)
    out = {}
    for name, parts in errors.items():
        e = np.concatenate([p[0] for p in parts])
        ei = np.concatenate([p[1] for p in parts])
        out[name] = {
            "mean_hm_px": float(e.mean()), "median_hm_px": float(np.median(e)), "p95_hm_px": float(np.percentile(e, 95)),
            "max_hm_px": float(e.max()), "mean_image_px": float(ei.mean()), "joints": int(e.size),
            "people": len(records), "decode_ms_per_person": 1000 * times[name] / len(records),
        }
    return out


def _chunk(records, offset, codec, cfg, augment, seed, size, hm_w, flip_index, errors, times) -> None:
    heatmaps, mats, truth, weights, box = [], [], [], [], []
    for i, r in enumerate(records, start=offset):
        aug = sample_augmentation(np.random.default_rng((seed, 0, i)), cfg) if augment else Augmentation()
        side = r.scale * aug.scale
        m = get_affine_transform(r.center, side, aug.rotation, size)
        if aug.flip:
            f = flip_matrix(size)
            m = f[:, :2] @ m + np.c_[np.zeros((2, 2)), f[:, 2]]
        jc = r.joints.astype(np.float64) @ m[:, :2].T + m[:, 2]
        perm = flip_index if aug.flip else np.arange(14)
        hm, w = codec.encode(jc[perm], r.visible[perm])
        heatmaps.append(hm)
        mats.append(m)
        truth.append(r.joints[perm])
        weights.append(w)
        box.append(side)
    heatmaps, mats = np.stack(heatmaps), np.stack(mats)
    truth, weights, box = np.stack(truth), np.stack(weights) > 0, np.asarray(box)
    for name, dark in (("quarter", False), ("dark", True)):
        t = time.perf_counter()
        coords, _ = codec.decode(heatmaps, dark=dark)
        times[name] += time.perf_counter() - t
        err_img = np.linalg.norm(crop_to_image(coords, mats) - truth, axis=-1)
        err_hm = err_img * hm_w / box[:, None]
        errors[name].append((err_hm[weights], err_img[weights]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("POSEDISTILL_DATA", str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--data", default=default)
    ap.add_argument("--input-size", type=int, default=256)
    ap.add_argument("--sigma", type=float, default=2.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "codec_roundtrip.json"))
    args = ap.parse_args()
    data = Path(args.data)
    codec = HeatmapCodec(input_size=args.input_size, sigma=args.sigma)
    sets = {"lsp (1800, lsp_dataset/joints.mat)": read_lsp(data / "lsp" / "lsp_dataset"),
            "lspet (7500)": read_lspet(data / "lspet")}
    rows, results = [], {}
    for dname, recs in sets.items():
        for mode, aug in (("eval", False), ("train-aug", True)):
            res = run(recs, codec, aug)
            results[f"{dname} / {mode}"] = res
            for method, r in res.items():
                rows.append((dname, mode, method, r))
    print(f"codec round trip: input {args.input_size}, heatmap {codec.heatmap_size[0]}, sigma {args.sigma}")
    print(f"{'dataset':36s} {'crop':9s} {'decode':8s} {'mean':>6s} {'median':>6s} {'p95':>6s} {'max':>6s}"
          f" {'img px':>7s} {'joints':>7s}   (errors in heatmap px)")
    for d, mode, method, r in rows:
        print(f"{d:36s} {mode:9s} {method:8s} {r['mean_hm_px']:6.3f} {r['median_hm_px']:6.3f} {r['p95_hm_px']:6.3f}"
              f" {r['max_hm_px']:6.3f} {r['mean_image_px']:7.3f} {r['joints']:7d}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "command": "python benchmarks/codec_roundtrip.py", "input_size": args.input_size, "sigma": args.sigma,
        "heatmap_size": codec.heatmap_size[0], "machine": platform.platform(), "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
