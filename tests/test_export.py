"""ONNX export, BN folding and int8 quantization (small models, seconds each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from posedistill.cli import main
from posedistill.errors import CheckpointError, ConfigError
from posedistill.deploy.onnx import export_onnx
from posedistill.deploy.optimize import fold_batchnorm, optimize_for_inference
from posedistill.deploy.quantize import quantize_onnx
from posedistill.deploy.runtime import load_onnx_session, onnx_is_quantized, onnx_metadata
from posedistill.models import stacked_hourglass

from helpers import make_checkpoint, model_meta

def _real_images(shared_data: Path, n: int) -> list[Path]:
    folder = shared_data / "lspet" / "images"
    images = sorted(folder.glob("im07*.jpg"))[:n] if folder.is_dir() else []
    if len(images) < n:
        pytest.skip(f"real LSPET images not found under {folder}")
    return images


def _random_bn(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return _random_bn(stacked_hourglass(stacks=2, channels=32, num_joints=14))


@pytest.mark.parametrize("depthwise", [False, True])
def test_fold_batchnorm_keeps_outputs(depthwise):
    model = _random_bn(stacked_hourglass(stacks=1, channels=32, num_joints=14, depthwise=depthwise))
    fast = optimize_for_inference(model)
    n_bn = lambda m: sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    assert n_bn(fast) < n_bn(model) / 2  # conv->BN folded, pre-activation BNs remain
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)[-1]
        out = fast(x.contiguous(memory_format=torch.channels_last))[-1]
    assert torch.allclose(ref, out, atol=1e-4)
    with pytest.raises(ConfigError):
        fold_batchnorm(model.train())
    model.eval()


def test_export_dynamic_batch_matches_torch(small_model, tmp_path):
    path = export_onnx(small_model, tmp_path / "m.onnx", input_size=64, metadata={"joint_set": "lsp"})
    onnx.checker.check_model(str(path))
    proto = onnx.load(str(path))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch axis
    session = load_onnx_session(path)
    assert onnx_metadata(session)["joint_set"] == "lsp"
    for batch in (1, 3):
        x = torch.randn(batch, 3, 64, 64)
        with torch.no_grad():
            ref = small_model(x)[-1].numpy()
        out = session.run(None, {"image": x.numpy()})[0]
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temp files left


def test_corrupt_onnx_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 20)
    with pytest.raises(CheckpointError, match="bad.onnx"):
        load_onnx_session(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_onnx_session(tmp_path / "missing.onnx")


def test_static_int8_needs_calibration(small_model, tmp_path):
    path = export_onnx(small_model, tmp_path / "m.onnx", input_size=64, check=False)
    with pytest.raises(ConfigError, match="calib"):
        quantize_onnx(path, tmp_path / "q.onnx")
    out = quantize_onnx(path, tmp_path / "qd.onnx", mode="dynamic")  # weights only: no data needed
    assert load_onnx_session(out).run(None, {"image": np.zeros((2, 3, 64, 64), np.float32)})[0].shape == (2, 14, 16, 16)


def test_quantized_models_are_recognised(small_model, tmp_path):
    path = export_onnx(small_model, tmp_path / "m.onnx", input_size=64, check=False)
    rng = np.random.default_rng(0)
    static = quantize_onnx(path, tmp_path / "qs.onnx",
                           calibration=[rng.standard_normal((2, 3, 64, 64)).astype(np.float32) for _ in range(2)])
    dynamic = quantize_onnx(path, tmp_path / "qd.onnx", mode="dynamic")
    assert not onnx_is_quantized(path)
    assert onnx_is_quantized(static) and onnx_is_quantized(dynamic)


def test_export_cli_int8_close_to_fp32_on_real_images(shared_data, tmp_path):
    images = _real_images(shared_data, 12)
    calib, held_out = tmp_path / "calib", images[8:]
    calib.mkdir()
    for p in images[:8]:
        (calib / p.name).write_bytes(p.read_bytes())
    torch.manual_seed(0)
    model = stacked_hourglass(stacks=1, channels=32, num_joints=14).eval()
    ckpt = tmp_path / "c.pt"
    make_checkpoint(ckpt, model, model_meta(model, "hg1_32", 128))
    out = tmp_path / "m.onnx"
    res = CliRunner().invoke(main, ["export", str(ckpt), "--onnx", str(out), "--int8", "--calib", str(calib)])
    assert res.exit_code == 0, res.output
    int8 = tmp_path / "m.int8.onnx"
    assert out.is_file() and int8.is_file()
    from posedistill.inference.network import PoseNetwork

    assert PoseNetwork.load(int8).quantized and not PoseNetwork.load(out).quantized
    assert not PoseNetwork.load(ckpt).quantized
    from posedistill.inference.calibration import calibration_batches

    x = np.concatenate(calibration_batches(held_out, PoseNetwork.load(ckpt).meta, limit=4))
    fp = load_onnx_session(out).run(None, {"image": x})[0]
    q = load_onnx_session(int8).run(None, {"image": x})[0]
    n, k, h, w = fp.shape
    f, g = fp.reshape(n * k, -1), q.reshape(n * k, -1)
    a, b = f.argmax(1), g.argmax(1)
    # An untrained model's heatmaps are flat, so near-ties can swap the argmax: measure how far below the fp32
    # maximum the fp32 heatmap is at the int8 argmax, relative to the heatmap's range.
    loss = (f.max(1) - f[np.arange(n * k), b]) / (f.max(1) - f.min(1))
    assert np.median(loss) < 0.05 and np.percentile(loss, 90) < 0.25, loss
    assert np.mean(np.abs(np.stack(np.divmod(a, w), 1) - np.stack(np.divmod(b, w), 1)).max(1) <= 2) >= 0.5
    assert np.corrcoef(f.ravel(), g.ravel())[0, 1] > 0.98


def test_export_cli_bad_checkpoint(tmp_path):
    bad = tmp_path / "c.pt"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "m.onnx"
    res = CliRunner().invoke(main, ["export", str(bad), "--onnx", str(out)])
    assert res.exit_code == 2 and "c.pt" in res.output
    assert not out.exists()
