"""Install a trained person finder as the package's shipped finder (run once per release; its output is committed).

Writes a slim copy of the finder checkpoint (weights, width, input size; no optimiser state) and its ONNX export
(what ``locate="finder"`` runs by default) into ``src/posedistill/weights/`` and sets the ``"finder"`` entry of the
manifest ``default.json`` (the students and the teacher are left as they are), with the sha256 of both files and
the provenance given on the command line.

    python tools/ship_finder.py experiments/person_finder/finder_w24.pt --name person_finder_w24 \
        --command "posedistill train-finder --data ../shared/data/lspet --out runs/finder --width 24 --epochs 40 --seed 3" \
        --val "photos IoU 0.592, scenes IoU 0.586 (epoch 40)"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from posedistill.deploy.onnx import export_onnx
from posedistill.io import atomic_write_json
from posedistill.models.checkpoint import save_atomic
from posedistill.models.finder import finder_from_checkpoint
from posedistill.models.pretrained import DEFAULT_WEIGHTS_DIR, MANIFEST, manifest_entry, read_manifest


class _AsList(nn.Module):
    """The finder with a list output, the shape :func:`~posedistill.deploy.onnx.export_onnx` expects."""

    def __init__(self, finder: nn.Module) -> None:
        super().__init__()
        self.finder = finder

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.finder(x)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a finder checkpoint (posedistill train-finder's OUT/finder.pt)")
    parser.add_argument("--name", required=True, help="file stem of the shipped copy")
    parser.add_argument("--command", required=True, help="the training command (provenance)")
    parser.add_argument("--val", default="", help="its validation figures (provenance)")
    parser.add_argument("--train-split", default="train", help="the LSPET split it was trained on")
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS_DIR)
    args = parser.parse_args()
    manifest = read_manifest(args.out)
    model = finder_from_checkpoint(args.checkpoint)
    pt = args.out / f"{args.name}.pt"
    save_atomic(pt, {"model": model.state_dict(), "width": model.width, "input_size": model.input_size})
    onnx_path = pt.with_suffix(".onnx")
    export_onnx(_AsList(model), onnx_path, input_size=model.input_size,
                metadata={"arch": "person_finder", "width": str(model.width)})
    old = manifest.get("finder") or {}
    manifest["finder"] = {**manifest_entry(args.out, pt.name), "onnx": manifest_entry(args.out, onnx_path.name),
                          "width": model.width, "input_size": model.input_size, "train_split": args.train_split,
                          "training_command": args.command, "val": args.val}
    atomic_write_json(args.out / MANIFEST, manifest)
    for stale in {old.get("file"), (old.get("onnx") or {}).get("file")} - {None, pt.name, onnx_path.name}:
        if (args.out / stale).is_file():
            (args.out / stale).unlink()
            print(f"removed the replaced {args.out / stale}")
    print(json.dumps(manifest["finder"], indent=2))


if __name__ == "__main__":
    main()
