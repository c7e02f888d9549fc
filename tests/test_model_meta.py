"""Issue 13, item 1: the codec travels with the model (one meta record in checkpoints and ONNX files), and
checkpoints written before the record existed still load and resume."""

import warnings

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from posedistill.models.checkpoint import load_checkpoint, save_checkpoint
from posedistill.cli import main
from posedistill.codec import HeatmapCodec, crop_to_image
from posedistill.errors import CheckpointError
from posedistill.evaluation import evaluate_checkpoint
from posedistill.models.meta import ModelMeta
from posedistill.models import build_model
from posedistill.models.loading import load_pose_model
from posedistill.inference.predictor import Predictor
from posedistill.quickstart import embedded_data_dir
from posedistill.training import Trainer

from helpers import tiny_cfg

SIGMA = 1.5


@pytest.fixture(scope="module")
def sigma15(tmp_path_factory):
    """A checkpoint of a model trained at sigma 1.5 (weights of one epoch on 16 images) and its ONNX export."""
    root = tmp_path_factory.mktemp("sigma")
    cfg = tiny_cfg(train__epochs=1, data__val="", data__train="1-16", data__sigma=SIGMA)
    Trainer(cfg, root / "run", progress=False).fit()
    onnx = root / "model.onnx"
    result = CliRunner().invoke(main, ["export", str(root / "run" / "last.pt"), "--onnx", str(onnx)])
    assert result.exit_code == 0, result.output
    return root / "run" / "last.pt", onnx


def _image():
    return cv2.imread(str(embedded_data_dir() / "images" / "im00003.jpg"))


def test_trainer_writes_the_meta_record(sigma15):
    ckpt = load_checkpoint(sigma15[0])
    meta = ModelMeta.from_dict(ckpt["model_meta"], where="test")
    assert (meta.sigma, meta.stride, meta.input_size, meta.joint_set) == (SIGMA, 4, 64, "lsp")
    assert meta.box_padding == 1.25 and meta.decode == "quarter" and len(meta.flip_index) == 14


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_predict_decodes_with_the_training_sigma(sigma15, backend):
    path = sigma15[0] if backend == "torch" else sigma15[1]
    predictor = Predictor(path, dark=True, locate="none")
    assert predictor.network.codec.sigma == SIGMA and predictor.meta.stride == 4
    image = _image()
    h, w = image.shape[:2]
    crop, matrix = predictor.network.preprocess(image, [0, 0, w, h])
    # the tiny model's own maps may be too flat for DARK's blur to matter (it depends on OpenCV's resampling in
    # training), so the network's output is replaced by maps with off-grid Gaussian peaks, where it does
    k, side = predictor.meta.num_joints, 64 // predictor.meta.stride
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    centres = np.random.default_rng(0).uniform(3, side - 4, size=(k, 2))
    maps = np.stack([np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * SIGMA**2)) for cx, cy in centres])[None]
    maps = maps * (1 + 0.3 * np.sin(xx)[None, None])  # not an exact Gaussian: the blur's width changes the offsets
    predictor.network.heatmaps = lambda batch, **options: maps.astype(np.float32)
    keypoints = predictor(image).keypoints[0]
    expected = {}
    for sigma in (SIGMA, 2.0):  # DARK with the model's sigma, not the default 2.0
        coords, _ = HeatmapCodec(input_size=64, sigma=sigma).decode(maps.astype(np.float32), dark=True)
        expected[sigma] = crop_to_image(coords, matrix[None])[0]
    assert not np.allclose(expected[SIGMA], expected[2.0], atol=1e-4)
    assert np.allclose(keypoints, expected[SIGMA], atol=1e-4)


def test_evaluation_uses_the_training_sigma(sigma15):
    for path in sigma15:
        result = evaluate_checkpoint(path, embedded_data_dir(), dataset="lspet", split="1-8", dark=True)
        assert result.settings["sigma"] == SIGMA and result.to_dict()["dark"] is True


def test_export_and_bench_files_carry_the_record(sigma15, tmp_path):
    assert load_pose_model(sigma15[1]).meta == load_pose_model(sigma15[0]).meta
    from posedistill.bench.benchmark import run_benchmark

    run_benchmark(["hg1_32"], backends=["onnx"], input_sizes=[64], batches=[1], repeats=1, warmup=0,
                  workdir=tmp_path, progress=False)
    meta = load_pose_model(tmp_path / "hg1_32_64.onnx").meta
    assert (meta.arch, meta.input_size, meta.stride) == ("hg1_32", 64, 4)


def _old_layout(path):
    """Rewrite a checkpoint as the engine wrote it before the meta record (same keys less model_meta)."""
    ckpt = load_checkpoint(path)
    del ckpt["model_meta"]
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k not in ("format", "version")})


def test_old_checkpoint_loads_with_its_own_sigma_silently_and_defaults_with_a_notice(sigma15, tmp_path):
    old = tmp_path / "old.pt"
    old.write_bytes(sigma15[0].read_bytes())
    _old_layout(old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_pose_model(old).meta == load_pose_model(sigma15[0]).meta
    older = tmp_path / "older.pt"
    model = build_model("hg1_32")
    save_checkpoint(older, {"arch": {"name": "hg1_32", "num_joints": 14}, "joint_set": "lsp", "input_size": 64,
                            "model": model.state_dict()})
    with pytest.warns(UserWarning, match="no model meta and no sigma; decoding with sigma 2.0"):
        assert load_pose_model(older).meta.sigma == 2.0


def test_malformed_meta_is_one_line_error(sigma15, tmp_path):
    bad = tmp_path / "bad.pt"
    ckpt = load_checkpoint(sigma15[0])
    ckpt["model_meta"] = {**ckpt["model_meta"], "stride": 8}
    save_checkpoint(bad, {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    with pytest.raises(CheckpointError, match=r"bad.pt: model meta \(stride 8"):
        load_pose_model(bad)


@pytest.mark.parametrize("schedule", [{}, {"schedule__kind": "cosine", "schedule__warmup_epochs": 1.0}],
                         ids=["multistep-per-epoch", "lambda-per-iteration"])
def test_run_started_before_the_meta_record_resumes_exactly(tmp_path, schedule):
    cfg = tiny_cfg(data__val="", data__train="1-16", **schedule)
    full = Trainer(cfg, tmp_path / "full", progress=False).fit()
    Trainer(cfg, tmp_path / "old", progress=False).fit(stop_after=1)
    for name in ("last.pt", "snapshot.pt"):
        _old_layout(tmp_path / "old" / name)
    resumed = Trainer(cfg, tmp_path / "old", resume=True, progress=False).fit()
    assert [r["loss"] for r in resumed["history"]] == pytest.approx([r["loss"] for r in full["history"]], rel=1e-6)
    assert [r["lr"] for r in resumed["history"]] == pytest.approx([r["lr"] for r in full["history"]], rel=1e-9)
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "old" / "last.pt")
    assert all(torch.allclose(a["model"][k].float(), b["model"][k].float(), atol=1e-6) for k in a["model"])
    assert "model_meta" in b  # the resumed run writes the record from then on
