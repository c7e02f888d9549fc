"""Build the quickstart's embedded dataset from LSPET (run once; its output is committed).

The quickstart evaluates the shipped models and adapts the shipped student on images that no shipped model was
trained on (issue 12), so the subset takes its images from two held-out slices of the project's LSPET protocol:

* local im00001-im00500: LSPET im06501-im07000, the *validation* slice (used to choose the shipped models'
  epochs, never trained on): the images a user adapts the student to;
* local im00501-im00600: LSPET im07001-im07100, the first fifth of the *test* slice: held aside for evaluation.

Each image is shrunk so that its longer side is at most --max-side pixels (the person is ~150 px tall in LSPET,
enough for 128x128 crops), re-encoded as JPEG, its joints scaled alike, and written as ``images/`` +
``joints.mat`` (14, 3, N; 1 = visible, the LSPET layout) + ``sources.csv`` (local name -> LSPET name) + README.md
into src/posedistill/assets/lspet_mini/.

    python tools/make_quickstart_data.py --source ../shared/data/lspet
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2
import numpy as np
import scipy.io

README = """# lspet_mini: the quickstart's embedded data

{count} images of LSP Extended (LSPET; Sam Johnson and Mark Everingham, "Learning Effective Human Pose Estimation
from Inaccurate Annotation", CVPR 2011), numbered im00001-im{count:05d} here, taken from the two slices of the
project's LSPET protocol that no shipped model was trained on:

| here | LSPET | protocol slice | quickstart use |
| --- | --- | --- | --- |
| im00001-im{train_end:05d} | im{train_src:05d}-im{train_src_end:05d} | validation (chose the shipped epochs) | adapt the student |
| im{test_start:05d}-im{count:05d} | im{test_src:05d}-im{test_src_end:05d} | test | held aside for evaluation |

`sources.csv` maps every local name to its LSPET name. Each image was shrunk so that its longer side is at most
{max_side} px and re-encoded as JPEG (quality {quality}); `joints.mat` holds the original annotations scaled by the
same factor, in the LSPET layout (14, 3, N), flag 1 = visible. Built by `python tools/make_quickstart_data.py`
from the original files.

Licence: the dataset states none. Its images were gathered from Flickr and annotated on Amazon Mechanical Turk;
use for research, and cite the paper above. Source of the original files: GitHub repository axelcarlier/lsp,
commit 8fabf3183516b1be5f9d44bd1c516609637e983e (a copy of the original lspet_dataset.zip).

Quickstart protocol: im00001-im{train_end:05d} train (adapt), im{test_start:05d}-im{count:05d} held aside for evaluation.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("../shared/data/lspet"))
    parser.add_argument("--out", type=Path, default=Path("src/posedistill/assets/lspet_mini"))
    parser.add_argument("--train-from", type=int, default=6501, help="first LSPET image of the adaptation part")
    parser.add_argument("--train-count", type=int, default=500)
    parser.add_argument("--test-from", type=int, default=7001, help="first LSPET image of the held-aside part")
    parser.add_argument("--test-count", type=int, default=100)
    parser.add_argument("--max-side", type=int, default=160)
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args()
    sources = [*range(args.train_from, args.train_from + args.train_count),
               *range(args.test_from, args.test_from + args.test_count)]
    all_joints = scipy.io.loadmat(args.source / "joints.mat")["joints"]
    if all_joints.shape[-1] < max(sources):
        raise SystemExit(f"{args.source / 'joints.mat'}: {all_joints.shape[-1]} people, need {max(sources)}")
    joints = all_joints[:, :, [s - 1 for s in sources]].astype(np.float64)
    if args.out.exists():
        shutil.rmtree(args.out)
    (args.out / "images").mkdir(parents=True)
    rows = ["local,lspet"]
    for k, src in enumerate(sources):
        name, src_name = f"im{k + 1:05d}.jpg", f"im{src:05d}.jpg"
        image = cv2.imread(str(args.source / "images" / src_name), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"{args.source / 'images' / src_name}: unreadable image")
        h, w = image.shape[:2]
        s = min(1.0, args.max_side / max(h, w))
        if s < 1.0:
            nw, nh = max(1, round(w * s)), max(1, round(h * s))
            image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
            sx, sy = nw / w, nh / h
            # pixel centres at integers: x' = (x + 0.5) * s - 0.5
            joints[:, 0, k] = (joints[:, 0, k] + 0.5) * sx - 0.5
            joints[:, 1, k] = (joints[:, 1, k] + 0.5) * sy - 0.5
        cv2.imwrite(str(args.out / "images" / name), image, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        rows.append(f"{name},{src_name}")
    scipy.io.savemat(args.out / "joints.mat", {"joints": joints}, do_compression=True)
    (args.out / "sources.csv").write_text("\n".join(rows) + "\n")
    count = len(sources)
    (args.out / "README.md").write_text(README.format(
        count=count, max_side=args.max_side, quality=args.quality, train_end=args.train_count,
        train_src=args.train_from, train_src_end=args.train_from + args.train_count - 1,
        test_start=args.train_count + 1, test_src=args.test_from, test_src_end=args.test_from + args.test_count - 1))
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {count} images to {args.out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
