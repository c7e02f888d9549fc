"""``posedistill predict``: poses of people in images, image folders and videos."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..inference import Predictor, parse_bbox, predict_paths


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint (.pt) or ONNX model (default: the package's default weights).")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default=None,
              help="Inference engine (default: onnx for a .onnx file, else torch).")
@click.option("--bbox", default=None, metavar="X,Y,W,H", help="Person box for every image (default: whole image).")
@click.option("--bbox-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON object: image file name -> [x, y, w, h] or a list of boxes.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON records here (default: stdout).")
@click.option("--draw", "draw_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the images (or annotated videos) with the skeleton drawn into this folder.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Crops per forward pass.")
@click.option("--threads", type=int, default=None, help="Intra-op threads (default: library default).")
@click.option("--joint-set", default=None, help="Refuse weights for another joint set (lsp, mpii, coco).")
@click.option("--dark", is_flag=True, help="DARK sub-pixel decoding.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def predict(inputs: tuple[str, ...], weights: Path | None, backend: str | None, bbox: str | None,
            bbox_file: Path | None, output: Path | None, draw_dir: Path | None, batch_size: int,
            threads: int | None, joint_set: str | None, dark: bool, no_progress: bool) -> None:
    """Estimate the pose of one person per box in image files, folders or videos.

    The crop is the square of side max(w, h) * 1.25 centred on the box. Output: a JSON list with one record
    per image (or video frame) and person: image, [frame,] bbox, keypoints [{name, x, y, score}] in original
    image pixels.
    """
    box = parse_bbox(bbox) if bbox is not None else None
    predictor = Predictor(weights, backend=backend, joint_set=joint_set, threads=threads, dark=dark)
    skipped: list[str] = []
    records = predict_paths(predictor, inputs, bbox=box, bbox_file=bbox_file, output=output, draw_dir=draw_dir,
                            batch_size=batch_size, progress=not no_progress, skipped=skipped)
    done = len({(r["image"], r.get("frame")) for r in records})
    click.echo(f"predicted {done} images/frames, skipped {len(skipped)} bad ones"
               + (" (see the warnings above)" if skipped else ""), err=True)
    if output is None:
        click.echo(json.dumps(records, indent=2))
    else:
        click.echo(f"wrote {len(records)} records to {output}", err=True)
