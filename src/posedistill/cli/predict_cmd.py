"""``posedistill predict``: poses of people in images, image folders and videos."""

from __future__ import annotations

from pathlib import Path

import click

from ..inference.pipeline import predict_paths
from ..inference.predictor import Predictor
from ..inference.refine import REFINE_CHOICES
from ..inference.sources import parse_bbox
from ..inference.tracking import TrackingConfig
from ..io import json_text


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint (.pt) or ONNX model (default: the shipped student of --model).")
@click.option("--model", default=None, metavar="NAME",
              help="A shipped student: tiny (fastest) or base (more accurate); default: the package's default "
                   "(docs/model_card.md). A shipped student runs as its ONNX export unless --backend torch.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default=None,
              help="Inference engine (default: onnx for a .onnx file, else torch).")
@click.option("--bbox", default=None, metavar="X,Y,W,H", help="Person box for every image (default: localised).")
@click.option("--bbox-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON object: image file name -> [x, y, w, h] or a list of boxes.")
@click.option("--locate", type=click.Choice(["auto", "finder", "pose", "hog", "both", "none"]), default="auto",
              show_default=True,
              help="How to find the person without a box: the shipped person finder's boxes refined by the "
                   "network (finder, about 20 ms; auto = finder), the network on the whole image and a window grid "
                   "(pose, about 12x slower, about as accurate), OpenCV's HOG detections ranked by the network (hog), "
                   "pose and hog together (both), or none (the whole image). Candidates are ranked by the person scorer beside the weights "
                   "(WEIGHTS.person.json, from python -m posedistill.inference.scorer_fit) where there is one, else by "
                   "confidence.")
@click.option("--people", type=int, default=1, show_default=True,
              help="Most people per image when localising (distinct, at least 0.6x the best one's score; the "
                   "finder proposes its N best people).")
@click.option("--flip", is_flag=True,
              help="Flip test: average each crop's heatmaps with its mirror image's (more accurate, twice the "
                   "network time; the person search itself is not flipped).")
@click.option("--refine", type=click.Choice(list(REFINE_CHOICES)), default="auto", show_default=True,
              help="A given box (--bbox, --bbox-file, a video's fixed box): crop once more on the box of the "
                   "person's predicted joints when it disagrees with the given box (auto), always (on) or never "
                   "(off); the second pose is kept. Makes loose or shifted detector boxes cost less; the person "
                   "search refines its own boxes.")
@click.option("--no-track", is_flag=True, help="Video: localise every frame instead of following the person.")
@click.option("--no-smooth", is_flag=True, help="Video: no One Euro smoothing of the keypoints.")
@click.option("--min-cutoff", type=float, default=8.0, show_default=True,
              help="One Euro filter: cutoff (Hz) at rest; lower is smoother.")
@click.option("--beta", type=float, default=8.0, show_default=True,
              help="One Euro filter: cutoff rise with speed (per person height per second); higher lags less.")
@click.option("--relocalize-below", type=float, default=0.25, show_default=True,
              help="Video: localise afresh when the mean joint score falls below this.")
@click.option("--recheck-every", type=int, default=TrackingConfig.recheck_every, show_default=True,
              help="Video: every N tracked frames also localise on the whole frame, and move to the person found "
                   "elsewhere if they score better (0: never).")
@click.option("--recheck-margin", type=float, default=TrackingConfig.recheck_margin, show_default=True,
              help="Video: how much better that person must score to take the track.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON records here (default: stdout).")
@click.option("--draw", "draw_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the images (or annotated videos) with the skeleton drawn into this folder.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Crops per forward pass.")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Threads that decode and crop images.")
@click.option("--schedule", type=click.Choice(["auto", "overlap", "phased"]), default="auto", show_default=True,
              help="Image files: decode the next images while the network runs (overlap), or decode a window "
                   "of images, then run the network on it alone (phased); auto: overlap for an int8 model, "
                   "else phased with fewer than 2 x workers cores.")
@click.option("--threads", type=int, default=None, help="Intra-op threads (default: library default).")
@click.option("--joint-set", default=None, help="Refuse weights for another joint set (lsp, mpii, coco).")
@click.option("--dark", is_flag=True, help="DARK sub-pixel decoding.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def predict(inputs: tuple[str, ...], weights: Path | None, model: str | None, backend: str | None,
            bbox: str | None, bbox_file: Path | None, locate: str, people: int, flip: bool, refine: str,
            no_track: bool, no_smooth: bool, min_cutoff: float, beta: float, relocalize_below: float,
            recheck_every: int, recheck_margin: float, output: Path | None, draw_dir: Path | None, batch_size: int,
            workers: int, schedule: str, threads: int | None,
            joint_set: str | None, dark: bool, no_progress: bool) -> None:
    """Estimate the pose of people in image files, folders or videos.

    Without a box the person is localised (see --locate); in a video they are then followed from frame to frame
    (box from the previous frame's joints) and the keypoints smoothed by a One Euro filter. The crop is the
    square of side max(w, h) times the model's box padding (1.25) centred on the box. Output: a JSON list with
    one record per image (or video frame) and person: image, [frame,] bbox, keypoints [{name, x, y, score}] in
    original image pixels.
    """
    box = parse_bbox(bbox) if bbox is not None else None
    tracking = TrackingConfig(track=not no_track, smooth=not no_smooth, min_cutoff=min_cutoff, beta=beta,
                              relocalize_below=relocalize_below, recheck_every=recheck_every,
                              recheck_margin=recheck_margin)
    predictor = Predictor(weights, model=model, backend=backend, locate=locate, people=people, flip=flip,
                          refine=REFINE_CHOICES[refine], threads=threads, dark=dark, joint_set=joint_set)
    skipped: list[str] = []
    records = predict_paths(predictor, inputs, bbox=box, bbox_file=bbox_file, output=output, draw_dir=draw_dir,
                            batch_size=batch_size, progress=not no_progress, skipped=skipped, tracking=tracking,
                            workers=workers, schedule=schedule)
    done = len({(r["image"], r.get("frame")) for r in records})
    click.echo(f"predicted {done} images/frames, skipped {len(skipped)} bad ones"
               + (" (see the warnings above)" if skipped else ""), err=True)
    if output is None:
        click.echo(json_text(records, indent=2))
    else:
        click.echo(f"wrote {len(records)} records to {output}", err=True)
