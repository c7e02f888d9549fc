"""``posedistill export``: ONNX export (dynamic batch) and int8 quantization of a checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from ..inference.calibration import calibration_batches
from ..inference.person_score import copy_scorer
from ..deploy.onnx import export_onnx
from ..deploy.quantize import quantize_onnx
from ..models.loading import load_pose_model


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output fp32 ONNX file.")
@click.option("--input-size", type=int, default=None, help="Input side (default: the checkpoint's).")
@click.option("--int8", is_flag=True, help="Also write an int8 model (ONNX Runtime quantization).")
@click.option("--int8-output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="int8 output file (default: OUT with suffix .int8.onnx).")
@click.option("--int8-mode", type=click.Choice(["static", "dynamic"]), default="static", show_default=True,
              help="static: QDQ, per-channel weights, calibrated activations; dynamic: weights only.")
@click.option("--calib", type=click.Path(exists=False, path_type=Path), default=None,
              help="Calibration images (folder, image files or a video) for static int8.")
@click.option("--calib-limit", type=int, default=64, show_default=True, help="Calibration crops used.")
@click.option("--calib-bbox-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Optional JSON boxes for the calibration images (default: whole images).")
def export(checkpoint: Path, onnx_path: Path, input_size: int | None, int8: bool, int8_output: Path | None,
           int8_mode: str, calib: Path | None, calib_limit: int, calib_bbox_file: Path | None) -> None:
    """Export CHECKPOINT to ONNX (last-stack heatmaps, dynamic batch axis), optionally also int8.

    The fp32 model is checked with onnx.checker and against PyTorch (max |diff| <= 1e-4). The checkpoint's
    model meta (input size, stride, sigma, joint set, normalisation) is stored in the file. A person scorer beside
    the checkpoint (CHECKPOINT.person.json) is copied beside the fp32 ONNX file, keyed to it.
    """
    loaded = load_pose_model(checkpoint, backend="torch")
    meta = loaded.meta.with_input_size(input_size) if input_size else loaded.meta
    size = meta.input_size
    calib_data = None
    if int8 and int8_mode == "static":
        if calib is None:
            raise click.UsageError("--int8 (static) needs --calib DATA (or use --int8-mode dynamic)")
        calib_data = calibration_batches(calib, meta, limit=calib_limit, bbox_file=calib_bbox_file)
    export_onnx(loaded.module, onnx_path, input_size=size, metadata=meta.to_onnx_props())
    click.echo(f"wrote {onnx_path}")
    if input_size in (None, loaded.meta.input_size):  # the same crops: the checkpoint's person scorer fits it too
        for path in copy_scorer(checkpoint, [onnx_path]):
            click.echo(f"wrote {path} (the checkpoint's person scorer, keyed to the ONNX file)")
    if int8:
        out = int8_output or onnx_path.with_suffix(".int8.onnx")
        quantize_onnx(onnx_path, out, calibration=calib_data, mode=int8_mode)
        click.echo(f"wrote {out}")
