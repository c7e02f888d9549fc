"""Build the quickstart's embedded dataset from LSPET (run once; its output is committed).

Takes LSPET images im00001..imN (all from the project's training split), shrinks each so that its longer side
is at most --max-side pixels (the person is ~150 px tall in LSPET, enough for 128x128 crops), re-encodes it as
JPEG, scales the joints accordingly, and writes ``images/`` + ``joints.mat`` (14, 3, N; 1 = visible, the LSPET
layout) + README.md into src/posedistill/assets/lspet_mini/.

    python tools/make_quickstart_data.py --source ../shared/data/lspet --count 600
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
from Inaccurate Annotation", CVPR 2011), im00001-im{count:05d}, all from the project's LSPET *training* split.
Each image was shrunk so that its longer side is at most {max_side} px and re-encoded as JPEG (quality
{quality}); `joints.mat` holds the original annotations scaled by the same factor, in the LSPET layout
(14, 3, N), flag 1 = visible. Built by `python tools/make_quickstart_data.py` from the original files.

Licence: the dataset states none. Its images were gathered from Flickr and annotated on Amazon Mechanical Turk;
use for research, and cite the paper above. Source of the original files: GitHub repository axelcarlier/lsp,
commit 8fabf3183516b1be5f9d44bd1c516609637e983e (a copy of the original lspet_dataset.zip).

Quickstart protocol: im00001-im{train_end:05d} train, im{test_start:05d}-im{count:05d} held aside for evaluation.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("../shared/data/lspet"))
    parser.add_argument("--out", type=Path, default=Path("src/posedistill/assets/lspet_mini"))
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--test", type=int, default=100, help="last N images held aside for evaluation")
    parser.add_argument("--max-side", type=int, default=160)
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args()
    joints = scipy.io.loadmat(args.source / "joints.mat")["joints"][:, :, : args.count].astype(np.float64)
    if args.out.exists():
        shutil.rmtree(args.out)
    (args.out / "images").mkdir(parents=True)
    for k in range(args.count):
        name = f"im{k + 1:05d}.jpg"
        image = cv2.imread(str(args.source / "images" / name), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"{args.source / 'images' / name}: unreadable image")
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
    scipy.io.savemat(args.out / "joints.mat", {"joints": joints}, do_compression=True)
    (args.out / "README.md").write_text(README.format(count=args.count, max_side=args.max_side,
                                                      quality=args.quality, train_end=args.count - args.test,
                                                      test_start=args.count - args.test + 1))
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {args.count} images to {args.out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
