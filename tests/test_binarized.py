"""Binarized Hourglass baseline (Bulat & Tzimiropoulos, ICCV 2017; XNOR-Net binarization)."""

import pytest
import torch
from torch import nn

from posedistill.training.losses import HeatmapLoss
from posedistill.models import (BinarizedStackedHourglass, BinaryConv2d, BinaryResidual, StackedHourglass,
                                binarized_hourglass, build_model, get_model_spec, list_models)
from posedistill.models.binarized import BinaryActivation, binary_mac_fraction, binary_sign
from posedistill.bench.profiling import num_threads

from helpers import make_checkpoint, model_meta


def test_forward_shapes_match_plain_hourglass():
    torch.manual_seed(0)
    model = binarized_hourglass(stacks=2, channels=32, num_joints=14)
    plain = StackedHourglass(stacks=2, channels=32, num_joints=14)
    out = model(torch.randn(2, 3, 64, 128))
    assert len(out) == 2 and all(o.shape == (2, 14, 16, 32) for o in out)
    assert isinstance(model, StackedHourglass) and model.stride == 4
    # same macro topology: the same top-level modules with the same lengths
    for name in ("hourglasses", "features", "heads", "remap_features", "remap_heatmaps"):
        assert len(getattr(model, name)) == len(getattr(plain, name)), name
    # first and last layers stay real-valued, every residual unit is binary
    assert type(model.stem[0]) is nn.Conv2d and all(type(h) is nn.Conv2d for h in model.heads)
    assert not any(isinstance(m, BinaryConv2d) for m in model.heads.modules())
    residuals = [m for m in model.modules() if isinstance(m, BinaryResidual)]
    assert len(residuals) == sum(isinstance(m, nn.Module) and type(m).__name__ == "Residual" for m in plain.modules())
    assert binary_mac_fraction(model, 64) > 0.8 and binary_mac_fraction(plain, 64) == 0.0


def test_sign_is_two_valued_with_clipped_straight_through_gradient():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.0, 1.5], requires_grad=True)
    y = binary_sign(x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    assert set(BinaryActivation()(torch.randn(1000)).unique().tolist()) == {-1.0, 1.0}


def test_binary_weights_take_two_values_per_output_channel():
    torch.manual_seed(0)
    conv = BinaryConv2d(8, 6, 3, padding=1)
    wb = conv.binary_weight().detach()
    alpha = conv.weight.detach().abs().mean(dim=(1, 2, 3))
    for o in range(6):
        values = sorted(wb[o].unique().tolist())
        assert values == pytest.approx([-alpha[o].item(), alpha[o].item()])
    # the forward pass really uses them
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, wb, padding=1), atol=1e-6)
    # and every binary conv of the model uses exactly two values per output channel in forward
    model = binarized_hourglass(stacks=1, channels=32).eval()
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(m.binary_weight().detach()))
             for m in model.modules() if isinstance(m, BinaryConv2d)]
    model(torch.randn(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    assert len(seen) == sum(isinstance(m, BinaryConv2d) for m in model.modules()) > 0
    assert all(len(w[o].abs().unique()) == 1 and len(w[o].unique()) <= 2 for w in seen for o in range(w.shape[0]))


def test_ste_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = binarized_hourglass(stacks=2, channels=32).train()
    outputs = model(torch.randn(2, 3, 64, 64))
    HeatmapLoss()(outputs, torch.rand_like(outputs[-1]), torch.ones(2, 14)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_bottleneck_block_variant():
    block = BinaryResidual(16, 32, block="bottleneck")
    assert block(torch.randn(1, 16, 8, 8)).shape == (1, 32, 8, 8)
    with pytest.raises(ValueError, match="block must be one of"):
        BinaryResidual(16, 16, block="xnor")
    with pytest.raises(ValueError, match="multiple of 8"):
        BinarizedStackedHourglass(stacks=1, channels=20, num_joints=14)


def test_registry_names():
    names = list_models()
    for s in (1, 2, 4, 8):
        for c in (32, 64, 128, 256):
            assert f"hg{s}_{c}_bin" in names
    spec = get_model_spec("hg2_64_bin")
    assert spec.binarized and (spec.stacks, spec.channels, spec.depthwise) == (2, 64, False)
    assert not get_model_spec("hg2_64").binarized
    model = build_model("hg2_64_bin", num_joints=16).eval()
    assert isinstance(model, BinarizedStackedHourglass) and model.stacks == 2 and model.channels == 64
    assert model(torch.zeros(1, 3, 64, 64))[-1].shape == (1, 16, 16, 16)
    assert type(build_model("hg2_64")) is StackedHourglass
    # existing names keep their positions
    assert names.index("hg8_256_dw") < names.index("hg1_32_bin")


def test_inference_rewrites_keep_the_binarized_output():
    # BN folding into a binary conv is exact: binarization commutes with a per-output-channel scale
    from posedistill.deploy.optimize import optimize_for_inference

    torch.manual_seed(0)
    model = build_model("hg2_32_bin").train()
    with torch.no_grad():  # non-trivial BN statistics
        model(torch.randn(4, 3, 64, 64))
    model.eval()
    fast = optimize_for_inference(model, channels_last=False)
    assert sum(isinstance(m, BinaryConv2d) for m in fast.modules()) == sum(
        isinstance(m, BinaryConv2d) for m in model.modules())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(fast(x)[-1], model(x)[-1], atol=1e-4, rtol=1e-4)


def test_checkpoint_round_trip(tmp_path):
    from posedistill.models.checkpoint import model_from_checkpoint

    model = build_model("hg1_32_bin")
    make_checkpoint(tmp_path / "b.pt", model, model_meta(model, "hg1_32_bin", 64))
    loaded, _ = model_from_checkpoint(tmp_path / "b.pt")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x)[-1], model.eval()(x)[-1])


def test_binarized_model_trains_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model("hg1_32_bin").train()
    x = torch.randn(4, 3, 64, 64)
    target = torch.zeros(4, 14, 16, 16)
    target[:, :, 6:10, 6:10] = 1.0
    weight = torch.ones(4, 14)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = HeatmapLoss()
    losses = []
    with num_threads(1):  # small convs: one thread is fastest and does not fight other jobs for cores
        for _ in range(20):
            loss = loss_fn(model(x), target, weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    # measured: 0.232 -> 0.139 in 20 steps (the real-valued hg1_32: 0.224 -> 0.065)
    assert losses[-1] < 0.75 * losses[0] and min(losses[-5:]) < min(losses[:5]), losses
