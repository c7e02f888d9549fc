"""``posedistill evaluate``: PCK@0.2, PCKh@0.5, AUC and a per-joint table of a checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from ..data.readers import DATASET_KINDS


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", "data_root", required=True, help="Dataset directory or annotation file.")
@click.option("--dataset", type=click.Choice(DATASET_KINDS), default="lspet",
              show_default=True)
@click.option("--split", default="test", show_default=True,
              help="Named split (lspet: train/val/test) or image-number range such as 7001-7500; 'all' for coco/json.")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Flip test.")
@click.option("--multi-scale", is_flag=True, help="Also average over scales 0.8, 0.9, 1.0, 1.1, 1.2.")
@click.option("--dark", is_flag=True, help="DARK (Taylor) sub-pixel decoding (default: the model's own choice, the quarter offset).")
@click.option("--pckh", is_flag=True, help="Also report PCKh@0.5 (needs head sizes, e.g. MPII with head boxes).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--against", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="CHECKPOINT",
              help="Also evaluate CHECKPOINT on the same people and print CHECKPOINT's difference to it, with its "
                   "paired bootstrap standard error (e.g. an FPD student against its ground-truth twin).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the settings, metrics and the command line as JSON "
                   "(posedistill.evaluation.write_evaluation).")
def evaluate(checkpoint, data_root, dataset, split, flip, multi_scale, dark, pckh, batch_size, workers, device,
             against, json_path):
    """Evaluate CHECKPOINT: PCK@0.2 (torso), AUC, per-joint table; flip test on by default."""
    from ..evaluation import evaluate_checkpoint, write_evaluation
    from . import command_line

    options = dict(dataset=dataset, split=split, flip=flip, multi_scale=multi_scale, dark=dark or None, pckh=pckh,
                   batch_size=batch_size, workers=workers, device=device, progress=True,
                   keep_predictions=against is not None)
    result = evaluate_checkpoint(checkpoint, data_root, **options)
    click.echo(result.table())
    if against is not None:
        other = evaluate_checkpoint(against, data_root, **options)
        got = result.compare_with(other)
        click.echo(f"{checkpoint} minus {against}: {got['difference']:+.1f} PCK@{result.threshold:g} "
                   f"({result.pck['mean']:.1f} against {other.pck['mean']:.1f}; paired bootstrap standard error "
                   f"{got['standard_error']:.1f} over the same {result.num_people} people)")
    if json_path is not None:
        write_evaluation(json_path, result, command_line())
        click.echo(f"wrote {json_path}")
