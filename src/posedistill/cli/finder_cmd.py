"""``posedistill train-finder``: train the person finder that finds people on whole photos."""

from __future__ import annotations

from pathlib import Path

import click

from ..data.readers import DATASET_KINDS


@click.command("train-finder")
@click.option("--data", "data_root", required=True, help="Dataset directory or annotation file.")
@click.option("--dataset", type=click.Choice(DATASET_KINDS), default="lspet", show_default=True)
@click.option("--train", "train_split", default="train", show_default=True, help="Training split or image range.")
@click.option("--val", "val_split", default="val", show_default=True,
              help="Validation split or image range (top-1 box IoU after every epoch).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run directory.")
@click.option("--width", type=int, default=24, show_default=True, help="Channel width (24: 0.23 M parameters).")
@click.option("--input-size", type=int, default=128, show_default=True)
@click.option("--epochs", type=int, default=40, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option("--weight-decay", type=float, default=1e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--steps", type=int, default=0, show_default=True,
              help="Steps an epoch (0: one canvas per training photo with a person).")
@click.option("--threads", type=int, default=None, help="PyTorch intra-op threads (default: the library's).")
@click.option("--init", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start from this finder checkpoint's weights (a new schedule).")
@click.option("--resume", is_flag=True, help="Continue OUT/last.pt exactly (same settings).")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs one line an epoch).")
def train_finder(data_root, dataset, train_split, val_split, out, width, input_size, epochs, batch_size, lr,
                 weight_decay, seed, steps, threads, init, resume, no_progress):
    """Train the person finder on a dataset's photos (whole photos with their annotated people).

    The shipped finder was trained with `--data ../shared/data/lspet --width 24 --epochs 40 --seed 3 --threads 1`;
    `python tools/ship_finder.py OUT/finder.pt --name NAME ...` installs a trained one.
    """
    import torch

    from ..data.splits import read_split
    from ..training.finder import FinderTraining, train_finder as run

    if threads is not None:
        if threads < 1:
            raise click.BadParameter("must be >= 1", param_hint="--threads")
        torch.set_num_threads(threads)
    settings = FinderTraining(width=width, input_size=input_size, epochs=epochs, batch_size=batch_size, lr=lr,
                              weight_decay=weight_decay, seed=seed, steps_per_epoch=steps)
    train = read_split(dataset, data_root, train_split)
    val = read_split(dataset, data_root, val_split) if val_split else []
    result = run(train, val, out, settings, resume=resume, init=init, progress=not no_progress, log=click.echo)
    click.echo(f"wrote {out / 'finder.pt'} (val IoU {result.get('val_iou', float('nan')):.3f})")
