"""``posedistill data``: inspect datasets (``data show``: what the model is trained on)."""

from __future__ import annotations

from pathlib import Path

import click
import cv2
import numpy as np

from ..data import DATASET_KINDS
from ..data.transforms import denormalize_image
from ..inference.drawing import SIDE_COLOURS, draw_skeleton
from ..errors import ConfigError, DataError
from ..io import atomic_open
from ..models import STRIDE
from ..models.meta import ModelMeta


def render_sample(sample: dict, meta: ModelMeta, *, title: str = "") -> np.ndarray:
    """Side-by-side panel: the augmented crop with its skeleton (left limbs blue, right red) and the summed
    target heatmap over a faded crop. Only joints with non-zero target weight are drawn. ``meta``: the pixel
    record the sample was made with (:attr:`PoseDataset.meta`)."""
    crop = denormalize_image(sample["image"].numpy(), mean=meta.mean, std=meta.std)
    size = crop.shape[0]
    target = sample["target"].numpy()
    weight = sample["target_weight"].numpy()
    # joints in crop pixels = the decoded target peaks (so the drawing shows exactly what is trained on)
    pts, _ = meta.codec().decode(target[None], dark=True)
    pts = pts[0]
    scale = max(1, 512 // size)
    big = cv2.resize(crop, (size * scale, size * scale), interpolation=cv2.INTER_LINEAR)
    draw_skeleton(big, (pts + 0.5) * scale - 0.5, meta.joints, shown=weight > 0, line=2 * scale // 2 + 1,
                  radius=3 * scale // 2 + 2)
    heat = np.clip(target.sum(axis=0), 0, 1)
    heat = cv2.resize(heat, (size * scale, size * scale), interpolation=cv2.INTER_LINEAR)
    heat_rgb = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    faded = cv2.resize(crop, (size * scale, size * scale)) // 3
    heat_panel = np.where(heat[..., None] > 0.02, (0.3 * faded + 0.7 * heat_rgb).astype(np.uint8), faded)
    panel = np.concatenate([big, np.full((big.shape[0], 8, 3), 255, np.uint8), heat_panel], axis=1)
    bar = np.full((28, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    x = panel.shape[1] - 190
    for name, colour in (("left", SIDE_COLOURS["left"]), ("right", SIDE_COLOURS["right"])):
        cv2.rectangle(bar, (x, 8), (x + 14, 20), colour, -1)
        cv2.putText(bar, name, (x + 18, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        x += 80
    return np.concatenate([bar, panel], axis=0)


@click.group("data")
def data() -> None:
    """Inspect datasets."""


@data.command("show")
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--dataset", "kind", type=click.Choice(DATASET_KINDS), default="lspet",
              show_default=True, help="Dataset format of DATA_DIR.")
@click.option("--index", type=int, default=0, show_default=True, help="Sample index (after --split).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write.")
@click.option("--split", default=None, help="lsp: train/test; lspet: train/val/test; mpii: train/valid.")
@click.option("--input-size", type=int, default=256, show_default=True, help="Crop size (multiple of 64).")
@click.option("--sigma", type=float, default=2.0, show_default=True, help="Heatmap Gaussian sigma.")
@click.option("--seed", type=int, default=0, show_default=True, help="Augmentation seed.")
@click.option("--epoch", type=int, default=0, show_default=True, help="Augmentation epoch.")
@click.option("--no-augment", is_flag=True, help="Show the evaluation crop (no augmentation).")
def show(data_dir: Path, kind: str, index: int, out: Path, split: str | None, input_size: int, sigma: float,
         seed: int, epoch: int, no_augment: bool) -> None:
    """Draw the augmented crop of sample INDEX with its skeleton beside its summed target heatmap."""
    from ..data import PoseDataset, read_dataset

    records = read_dataset(kind, data_dir, split=split)
    if not records:
        raise DataError(f"{data_dir}: no people found")
    if not 0 <= index < len(records):
        raise ConfigError(f"--index {index} out of range: {data_dir} has {len(records)} samples")
    rec = records[index]
    meta = ModelMeta.for_pixels(rec.joint_set, input_size, stride=STRIDE, sigma=sigma)
    ds = PoseDataset(records, meta=meta, train=not no_augment, seed=seed, check_images=False)
    sample = ds[(epoch, index)]
    aug = ds.augmentation(index, epoch)
    title = (f"{rec.image.name}  #{index}  scale x{aug.scale:.2f}  rot {aug.rotation:+.0f}  "
             f"{'flipped' if aug.flip else 'not flipped'}")
    panel = render_sample(sample, meta, title=title)
    ok, buf = cv2.imencode(out.suffix or ".png", panel) if out.suffix.lower() in (".png", ".jpg", ".jpeg",
                                                                                  ".bmp") else (False, None)
    if not ok:
        raise DataError(f"{out}: cannot write image (use a .png name in a writable folder)")
    try:
        with atomic_open(out, "wb") as handle:  # whole file or nothing
            handle.write(buf.tobytes())
    except OSError as exc:
        raise DataError(f"{out}: cannot write image ({exc.strerror or exc})") from None
    click.echo(f"wrote {out}")
