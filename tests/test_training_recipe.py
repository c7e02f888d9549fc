"""Issue-12 training options: warm-up and cosine schedules, foreground-weighted loss, sigma schedule,
``amp: auto``, and resuming from ``snapshot.pt`` when ``last.pt`` is lost."""

import csv
import math

import numpy as np
import pytest
import torch

from posedistill.models.checkpoint import load_checkpoint
from posedistill.data import PoseDataset, read_lspet
from posedistill.errors import ConfigError
from posedistill.training.losses import FPDLoss, HeatmapLoss, weighted_heatmap_mse
from posedistill.quickstart import embedded_data_dir
from posedistill.training import Trainer
from posedistill.training import precision
from posedistill.training.builders import build_optimizer, lr_factor

from helpers import pixels, tiny_cfg


def read_log(run):
    with open(run / "log.csv") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------------------------ optimiser
def test_adamw_decays_weights_apart_from_the_gradient():
    """optim.optimizer=adamw: decoupled weight decay (a zero gradient still shrinks the weights by lr * wd)."""
    cfg = tiny_cfg(optim__optimizer="adamw", optim__lr=0.1, optim__weight_decay=0.5)
    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.ones_(model.weight)
    opt = build_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.AdamW)
    model.weight.grad = torch.zeros_like(model.weight)
    opt.step()
    assert torch.allclose(model.weight, torch.full_like(model.weight, 1 - 0.1 * 0.5))
    coupled = build_optimizer(model, tiny_cfg(optim__optimizer="adam", optim__weight_decay=0.5))
    assert type(coupled) is torch.optim.Adam
    with pytest.raises(ConfigError, match="adamw"):
        tiny_cfg(optim__optimizer="lamb")


# ------------------------------------------------------------------------------------------------ schedule
def test_warmup_then_cosine_factors():
    cfg = tiny_cfg(train__epochs=10, schedule__kind="cosine", schedule__warmup_epochs=2.0,
                   schedule__min_lr_ratio=0.1)
    steps = 5
    f = [lr_factor(cfg, s, steps) for s in range(10 * steps + 1)]
    assert f[0] == pytest.approx(1 / 10)  # first step of a 10-step warm-up
    assert f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)  # warm-up done, cosine at its start
    assert all(a >= b - 1e-12 for a, b in zip(f[10:], f[11:]))  # then never rises
    assert f[10 * steps] == pytest.approx(0.1)  # ends at min_lr_ratio
    mid = lr_factor(cfg, 6 * steps, steps)  # half-way through the cosine part
    assert mid == pytest.approx(0.1 + 0.9 * 0.5)


def test_warmup_with_step_decay_factors():
    cfg = tiny_cfg(train__epochs=6, schedule__milestones=[4], schedule__gamma=0.1, schedule__warmup_epochs=1.0)
    assert lr_factor(cfg, 0, 4) == pytest.approx(0.25)
    assert lr_factor(cfg, 3, 4) == pytest.approx(1.0)
    assert lr_factor(cfg, 15, 4) == pytest.approx(1.0)
    assert lr_factor(cfg, 16, 4) == pytest.approx(0.1)


def test_bad_schedule_and_loss_values_are_refused():
    with pytest.raises(ConfigError, match="schedule.kind"):
        tiny_cfg(schedule__kind="linear")
    with pytest.raises(ConfigError, match="warmup_epochs"):
        tiny_cfg(schedule__warmup_epochs=3.0)  # not shorter than the 3 epochs
    with pytest.raises(ConfigError, match="fg_weight"):
        tiny_cfg(loss__fg_weight=-1.0)
    with pytest.raises(ConfigError, match="sigma_start"):
        tiny_cfg(data__sigma_start=4.0)  # without sigma_epochs


def test_engine_steps_a_warmup_cosine_schedule_every_iteration(tmp_path):
    cfg = tiny_cfg(schedule__kind="cosine", schedule__warmup_epochs=1.0, data__val="")
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    lrs = [float(r["lr"]) for r in read_log(tmp_path / "run")]  # lr at each epoch's start; 3 steps per epoch
    assert lrs[0] == pytest.approx(1e-3 / 3)  # first warm-up step
    assert lrs[1] == pytest.approx(1e-3)  # warm-up over, cosine starts at the full rate
    assert lrs[2] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["scheduler"]["last_epoch"] == 9  # 3 epochs x 3 iterations


# ---------------------------------------------------------------------------------------------------- loss
def test_foreground_weight_scales_errors_on_the_target_only():
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1, 1] = 1.0
    w = torch.ones(1, 1)
    pred_bg = target.clone()
    pred_bg[0, 0, 3, 3] = 0.5  # error on the background
    pred_fg = target.clone()
    pred_fg[0, 0, 1, 1] = 0.5  # same error on the peak
    plain = weighted_heatmap_mse(pred_fg, target, w)
    assert weighted_heatmap_mse(pred_bg, target, w, 10.0) == pytest.approx(plain.item())
    assert weighted_heatmap_mse(pred_fg, target, w, 10.0) == pytest.approx(11 * plain.item())


def test_fpd_loss_with_foreground_weight_keeps_its_form():
    g = torch.Generator().manual_seed(0)
    outs = [torch.rand(2, 3, 8, 8, generator=g) for _ in range(2)]
    target, teacher = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    w = torch.ones(2, 3)
    gt = HeatmapLoss(5.0)(outs, target, w)
    kd = HeatmapLoss(5.0)(outs, teacher, w)
    terms = FPDLoss(0.5, fg_weight=5.0)(outs, target, w, teacher)
    assert terms["gt"].item() == pytest.approx(gt.item()) and terms["kd"].item() == pytest.approx(kd.item())
    assert terms["loss"].item() == pytest.approx(0.5 * gt.item() + 0.5 * kd.item())
    assert gt.item() > HeatmapLoss()(outs, target, w).item()


# ------------------------------------------------------------------------------------------ sigma schedule
def test_sigma_schedule_widens_early_targets():
    records = read_lspet(embedded_data_dir(), indices=range(2))
    ds = PoseDataset(records, meta=pixels(input_size=64, sigma=1.5), train=True, sigma_schedule=(3.0, 2))
    assert ds.codec_for(0).sigma == pytest.approx(3.0)
    assert ds.codec_for(1).sigma == pytest.approx(2.25)
    assert ds.codec_for(2) is ds.codec and ds.codec_for(5) is ds.codec
    early, late = ds[(0, 0)]["target"], ds[(4, 0)]["target"]
    assert early.sum() > 2 * late.sum()  # wider Gaussians


# -------------------------------------------------------------------------------------------------- amp
def test_amp_auto_follows_the_cpu(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    assert precision.resolve_amp("auto", cpu) == "none"
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    assert precision.resolve_amp("auto", cpu) == "bf16"
    assert precision.resolve_amp("none", cpu) == "none" and precision.resolve_amp("bf16", cpu) == "bf16"


def test_run_resumes_on_a_machine_of_the_other_kind(tmp_path, monkeypatch):
    """amp=auto chose fp32 on the first machine and bf16 on the second: the run goes on, the log says which."""
    cfg = tiny_cfg(train__amp="auto", data__val="")
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    Trainer(cfg, tmp_path / "run", progress=False).fit(stop_after=1)
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    Trainer(cfg, tmp_path / "run", resume=True, progress=False).fit()
    rows = read_log(tmp_path / "run")
    assert [r["amp"] for r in rows] == ["none", "bf16", "bf16"]
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    weights = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    assert all(v.dtype in (torch.float32, torch.int64) for v in weights.values())


# ------------------------------------------------------------------------------------------------ snapshot
def test_lost_last_checkpoint_resumes_from_snapshot(tmp_path):
    cfg = tiny_cfg(data__val="")
    run = tmp_path / "run"
    Trainer(cfg, run, progress=False).fit(stop_after=2)
    snap, last = load_checkpoint(run / "snapshot.pt"), load_checkpoint(run / "last.pt")
    assert "optimizer" not in snap and snap["epoch"] == 2
    assert (run / "snapshot.pt").stat().st_size < 0.6 * (run / "last.pt").stat().st_size
    assert all(torch.equal(snap["model"][k], last["model"][k]) for k in last["model"])
    for name in ("last.pt", "best.pt"):
        (run / name).unlink(missing_ok=True)
    summary = Trainer(cfg, run, resume=True, progress=False).fit()
    assert [r["epoch"] for r in summary["history"]] == [1, 2, 3]
    assert load_checkpoint(run / "last.pt")["epoch"] == 3
    assert np.isfinite(summary["history"][-1]["loss"])


# ----------------------------------------------------------------------------------------- hourglass depth
def test_depth_is_trained_stored_and_rebuilt(tmp_path):
    from posedistill.models.checkpoint import model_from_checkpoint
    from posedistill.models import build_model

    assert sum(p.numel() for p in build_model("hg1_32", depth=3).parameters()) < \
        sum(p.numel() for p in build_model("hg1_32").parameters())
    cfg = tiny_cfg(model__depth=3, train__epochs=1, data__val="")
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["arch"] == {"name": "hg1_32", "num_joints": 14, "depth": 3}
    model, _ = model_from_checkpoint(tmp_path / "run" / "last.pt")
    assert model.depth == 3
    default = tiny_cfg(train__epochs=1, data__val="")
    with pytest.raises(ConfigError, match="checkpoint is|model.depth=3, this resume for model.depth=4"):
        Trainer(default.__class__(**{**default.__dict__, "train": cfg.train}), tmp_path / "run", resume=True,
                progress=False).fit()


def test_depth_must_fit_the_input():
    with pytest.raises(ConfigError, match="model.depth"):
        tiny_cfg(model__depth=5)  # 64 input: 4 * 2**5 = 128 does not divide it
    with pytest.raises(ConfigError, match="binarized"):
        from posedistill.models import build_model
        build_model("hg1_32_bin", depth=3)


def test_bad_depth_in_a_checkpoint_is_refused(tmp_path):
    from posedistill.models.checkpoint import save_checkpoint
    from posedistill.errors import CheckpointError

    save_checkpoint(tmp_path / "x.pt", {"arch": {"name": "hg1_32", "num_joints": 14, "depth": "deep"},
                                        "joint_set": "lsp", "input_size": 64, "model": {}})
    with pytest.raises(CheckpointError, match="depth"):
        load_checkpoint(tmp_path / "x.pt")


# ------------------------------------------------------------------------------------- BN recalibration
def test_recalibrated_batchnorm_holds_the_exact_average():
    from posedistill.training.bn_recalibration import recalibrate_batchnorm

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    g = torch.Generator().manual_seed(0)
    batches = [{"image": torch.randn(8, 3, 5, 5, generator=g) * (i + 1) + i} for i in range(4)]
    used = recalibrate_batchnorm(model, batches)
    assert used == 4 and not model.training and model[1].momentum == 0.1
    with torch.no_grad():
        feats = [model[0](b["image"]) for b in batches]
    mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in feats]).mean(0)
    assert torch.allclose(model[1].running_mean, mean, atol=1e-5)
    assert torch.allclose(model[1].running_var, var, rtol=1e-4)


def test_cli_without_progress_bars_prints_one_line_per_epoch(tmp_path):
    from click.testing import CliRunner

    from posedistill.cli import main

    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--model", "hg1_32", "--epochs", "2", "--batch-size", "8", "--no-progress",
            "--device", "cpu", "--set", f"data.root={embedded_data_dir()}", "--set", "data.train=1-16",
            "--set", "data.val=501-508", "--set", "data.input_size=64", "--set", "data.workers=0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("epoch ")]
    assert [line.split(" | ")[0] for line in lines] == ["epoch 1", "epoch 2"]
    assert all("val PCK@0.2" in line for line in lines)


def test_resume_rewrites_a_log_left_behind_by_a_kill(tmp_path):
    """Killed after last.pt (and snapshot.pt) were written but before log.csv: resuming a finished run has no
    epoch left to train, and still leaves log.csv equal to the checkpoint's history."""
    cfg = tiny_cfg(data__val="")
    run = tmp_path / "run"
    Trainer(cfg, run, progress=False).fit()
    rows = (run / "log.csv").read_text().splitlines()
    (run / "log.csv").write_text("\n".join(rows[:-1]) + "\n")  # the last epoch's row never made it
    Trainer(cfg, run, resume=True, progress=False).fit()
    assert [int(r["epoch"]) for r in read_log(run)] == [1, 2, 3]
