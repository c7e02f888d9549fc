"""Engine tests on real images (the embedded LSPET subset) with tiny models at 64x64 input."""

import csv
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from posedistill.config import load_config
from posedistill.errors import CheckpointError, ConfigError
from posedistill.models.checkpoint import load_checkpoint
from posedistill.models import build_model
from posedistill.quickstart import embedded_data_dir
from posedistill.training import Trainer, TrainingError

from helpers import assert_fault_stops_before_last_pt, make_checkpoint, model_meta, tiny_cfg


def read_log(run):
    with open(run / "log.csv") as handle:
        return list(csv.DictReader(handle))


def test_run_directory_and_checkpoint_contents(tmp_path):
    summary = Trainer(tiny_cfg(), tmp_path / "run", progress=False).fit()
    run = tmp_path / "run"
    for name in ("last.pt", "best.pt", "log.csv", "config.yaml", "metrics.json"):
        assert (run / name).is_file(), name
    assert any((run / "tb").iterdir())
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["arch"] == {"name": "hg1_32", "num_joints": 14} and ckpt["joint_set"] == "lsp"
    assert ckpt["epoch"] == 3 and ckpt["input_size"] == 64
    assert {"model", "optimizer", "scheduler", "rng", "config"} <= ckpt.keys()
    # the scheduler decayed the lr at epoch 2
    rows = read_log(run)
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 1e-3, 1e-4])
    assert summary["epochs_done"] == 3 and all(r["val_pck"] != "" for r in rows)
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path):
    full = Trainer(tiny_cfg(), tmp_path / "full", progress=False).fit()
    Trainer(tiny_cfg(), tmp_path / "part", progress=False).fit(stop_after=2)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["epoch"] == 2
    resumed = Trainer(tiny_cfg(), tmp_path / "part", resume=True, progress=False).fit()
    a = [row["loss"] for row in full["history"]]
    b = [row["loss"] for row in resumed["history"]]
    assert len(a) == len(b) == 3
    assert a == pytest.approx(b, rel=1e-6, abs=0)
    wa = load_checkpoint(tmp_path / "full" / "last.pt")["model"]
    wb = load_checkpoint(tmp_path / "part" / "last.pt")["model"]
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-6) for k in wa)


def test_existing_run_directory_is_not_overwritten(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty; use --resume or --overwrite"):
        Trainer(tiny_cfg(), run, progress=False).fit()
    with pytest.raises(ConfigError, match="nothing to resume"):
        Trainer(tiny_cfg(), tmp_path / "empty", resume=True, progress=False).fit()


def _teacher_ckpt(path, *, joint_set="lsp", input_size=64, num_joints=14):
    model = build_model("hg2_32", num_joints=num_joints)
    return make_checkpoint(path, model, model_meta(model, "hg2_32", input_size, joint_set=joint_set))


def test_distill_runs_and_logs_both_terms(tmp_path):
    teacher = _teacher_ckpt(tmp_path / "teacher.pt")
    cfg = tiny_cfg(train__epochs=1, data__val="", run__teacher=str(teacher))
    Trainer(cfg, tmp_path / "fpd", progress=False).fit()
    row = read_log(tmp_path / "fpd")[0]
    assert float(row["loss_kd"]) > 0 and float(row["loss_gt"]) > 0
    assert float(row["loss"]) == pytest.approx(0.5 * float(row["loss_kd"]) + 0.5 * float(row["loss_gt"]), rel=1e-5)
    assert load_checkpoint(tmp_path / "fpd" / "last.pt")["config"]["run"]["teacher"] == str(teacher)
    written = yaml.safe_load((tmp_path / "fpd" / "config.yaml").read_text())  # the run's config reloads as written
    assert load_config(tmp_path / "fpd" / "config.yaml").to_dict() == written
    assert written["run"] == {**cfg.to_dict()["run"], "mode": "distill"}


def test_trainer_validates_a_config_built_in_python(tmp_path):
    cfg = tiny_cfg()
    with pytest.raises(ConfigError, match="train.epochs, batch_size, val_every must be > 0"):
        Trainer(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=0)), tmp_path / "a")
    with pytest.raises(ConfigError, match="data.input_size: expected an integer"):
        Trainer(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, input_size="64")), tmp_path / "b")
    with pytest.raises(ConfigError, match="--unlabeled needs --teacher"):
        Trainer(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, unlabeled="images/")), tmp_path / "c")
    assert not (tmp_path / "a").exists()


def test_alpha_zero_control_is_ground_truth_training_without_running_the_teacher(tmp_path):
    from posedistill.training.teachers import UnusedTeacher

    teacher = _teacher_ckpt(tmp_path / "teacher.pt")
    cfg = tiny_cfg(train__epochs=1, data__val="", distill__alpha=0.0)
    control = tiny_cfg(train__epochs=1, data__val="", distill__alpha=0.0, run__teacher=str(teacher))
    built = []

    def count_forwards(trainer):  # the on_built injection point: the run's teacher and its student's passes
        calls = []
        trainer.model.register_forward_hook(lambda *_: calls.append(1))
        built.append((trainer.teacher, calls))

    Trainer(control, tmp_path / "a0", progress=False).fit(on_built=count_forwards)
    Trainer(cfg, tmp_path / "gt", progress=False).fit(on_built=count_forwards)
    (a0_teacher, a0_calls), (_, gt_calls) = built
    assert isinstance(a0_teacher, UnusedTeacher)  # checked and recorded, holds no network to run
    assert len(a0_calls) == len(gt_calls) == 3  # 24 images / batch 8: the student's 3 steps per run
    a0, gt = read_log(tmp_path / "a0")[0], read_log(tmp_path / "gt")[0]
    assert float(a0["loss_kd"]) == 0 and a0["loss"] == gt["loss"]  # the same training as ground truth alone
    run = load_checkpoint(tmp_path / "a0" / "last.pt")["config"]["run"]
    assert (run["mode"], run["teacher"]) == ("distill", str(teacher))  # still reported as the FPD runs' control


def test_distill_with_unlabeled_images(tmp_path):
    teacher = _teacher_ckpt(tmp_path / "teacher.pt")
    unlabeled = tmp_path / "unlabeled"
    unlabeled.mkdir()
    for name in ("im00590.jpg", "im00591.jpg", "im00592.jpg", "im00593.jpg"):
        (unlabeled / name).write_bytes((embedded_data_dir() / "images" / name).read_bytes())
    cfg = tiny_cfg(train__epochs=1, data__val="", train__batch_size=4, run__teacher=str(teacher),
                   run__unlabeled=str(unlabeled))
    Trainer(cfg, tmp_path / "fpd", progress=False).fit()
    assert float(read_log(tmp_path / "fpd")[0]["loss_kd"]) > 0
    with pytest.raises(ConfigError, match="--unlabeled needs --teacher"):
        tiny_cfg(run__unlabeled=str(unlabeled))


def test_teacher_for_other_joint_set_or_size_is_refused(tmp_path):
    bad = _teacher_ckpt(tmp_path / "mpii.pt", joint_set="mpii", num_joints=16)
    with pytest.raises(CheckpointError, match="teacher is for joint set 'mpii', the data has 'lsp'"):
        Trainer(tiny_cfg(train__epochs=1, data__val="", run__teacher=str(bad)), tmp_path / "a", progress=False).fit()
    big = _teacher_ckpt(tmp_path / "t256.pt", input_size=256)
    with pytest.raises(ConfigError, match="trained at input 256.*distill.teacher_input_size"):
        Trainer(tiny_cfg(train__epochs=1, data__val="", run__teacher=str(big)), tmp_path / "b", progress=False).fit()
    with pytest.raises(ConfigError, match="trained at input 256, the config's distill.teacher_input_size is 128"):
        Trainer(tiny_cfg(train__epochs=1, data__val="", distill__teacher_input_size=128, run__teacher=str(big)),
                tmp_path / "b2", progress=False).fit()
    with pytest.raises(CheckpointError, match="is for model 'hg2_32', expected 'hg1_32'"):
        Trainer(tiny_cfg(train__epochs=1, data__val="", run__init=str(big)), tmp_path / "c", progress=False).fit()


def _nan_loss(trainer):
    """``on_built`` hook: make every training loss NaN once the trainer is built."""
    trainer.loss_gt = lambda outputs, *a: outputs[-1].sum() * float("nan")


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path):
    assert_fault_stops_before_last_pt(tiny_cfg(train__epochs=2, data__val=""), tmp_path / "run", _nan_loss,
                                      r"non-finite loss \(nan\) at epoch 2, iteration 1")


def test_non_finite_batches_skipped_when_asked(tmp_path):
    cfg = tiny_cfg(train__epochs=1, data__val="", train__nonfinite="skip")
    Trainer(cfg, tmp_path / "run", progress=False).fit(on_built=_nan_loss)
    row = read_log(tmp_path / "run")[0]
    assert int(row["skipped_batches"]) == 3
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_end_to_end_loss_falls_and_pck_rises(tmp_path):
    """120 real iterations on 16 real LSPET images (no augmentation): the loss falls and PCK on them rises."""
    cfg = tiny_cfg(data__train="1-16", data__val="1-16", data__rotation=0.0, data__scale_factor=0.0,
                   data__flip=False, data__color_jitter=0.0, optim__lr=5e-3, schedule__milestones=[1000],
                   train__epochs=60, train__val_every=10, train__flip_test=False)
    summary = Trainer(cfg, tmp_path / "run", progress=False).fit()
    losses = [row["loss"] for row in summary["history"]]
    pcks = [row["val_pck"] for row in summary["history"] if "val_pck" in row]
    assert len(pcks) == 6
    assert losses[-1] < 0.5 * losses[0]
    assert pcks[-1] > pcks[0] + 10.0
    assert summary["best_val_pck"] == max(pcks)


@pytest.mark.slow
def test_ddp_two_cpu_processes_stay_in_sync(tmp_path):
    """torchrun with 2 CPU processes (gloo): replicas stay identical and the loss falls."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "posedistill", "train", "--out", str(tmp_path / "ddp"), "--model", "hg1_32", "--epochs", "3",
           "--batch-size", "4", "--no-progress", "--set", f"data.root={embedded_data_dir()}",
           "--set", "data.train=1-32", "--set", "data.val=", "--set", "data.input_size=64",
           "--set", "data.workers=0", "--set", "optim.lr=1e-3", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_log(tmp_path / "ddp")
    assert len(rows) == 3
    assert all(float(r["param_spread"]) == 0.0 for r in rows)
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    # each rank saw half of the 32 images per epoch: 4 steps of 4 per rank
    assert not (tmp_path / "ddp" / "last.pt.tmp").exists()


def test_sync_every_matches_per_step_training(tmp_path):
    """train.sync_every > 1 (no host sync inside a step, for GPUs) trains exactly as per-step checks do."""
    runs = {}
    for n in (1, 3):
        cfg = tiny_cfg(train__epochs=1, data__val="", train__sync_every=n)
        runs[n] = Trainer(cfg, tmp_path / f"run{n}", progress=False).fit()["history"][0]
        ckpt = load_checkpoint(tmp_path / f"run{n}" / "last.pt")
        runs[n]["weights"] = ckpt["model"]
    assert runs[1]["loss"] == pytest.approx(runs[3]["loss"], rel=1e-6)
    assert all(torch.equal(runs[1]["weights"][k], runs[3]["weights"][k]) for k in runs[1]["weights"])


def test_sync_every_still_stops_on_a_non_finite_loss(tmp_path):
    assert_fault_stops_before_last_pt(tiny_cfg(train__epochs=2, data__val="", train__sync_every=2), tmp_path / "run",
                                      _nan_loss, r"non-finite (loss|gradient) .*at epoch 2, between iterations 1 and 2")
    with pytest.raises(ConfigError, match="sync_every"):
        tiny_cfg(train__sync_every=4, train__nonfinite="skip")


def test_train_cli_init_starts_from_the_given_weights(tmp_path):
    """`posedistill train --init CKPT` (a warm restart): the run starts from CKPT's weights with a fresh schedule;
    at a learning rate of 1e-12 its convolutions end as CKPT's (a fresh start would not)."""
    import yaml
    from click.testing import CliRunner

    from posedistill.cli import main as cli

    Trainer(tiny_cfg(train__epochs=1, data__val=""), tmp_path / "first", progress=False).fit()
    cfg = tiny_cfg(train__epochs=1, data__val="", optim__lr=1e-12).to_dict()
    (tmp_path / "restart.yaml").write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(cli, ["train", "--config", str(tmp_path / "restart.yaml"), "--out",
                                      str(tmp_path / "second"), "--init", str(tmp_path / "first" / "last.pt"),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    first = load_checkpoint(tmp_path / "first" / "last.pt")["model"]
    second = load_checkpoint(tmp_path / "second" / "last.pt")
    conv = [k for k in first if k.endswith("conv.weight") or (k.endswith(".weight") and first[k].dim() == 4)]
    assert conv and all(torch.allclose(first[k], second["model"][k], rtol=0, atol=1e-9) for k in conv)
    fresh = build_model("hg1_32", num_joints=14).state_dict()
    assert not all(torch.allclose(first[k], fresh[k], rtol=0, atol=1e-9) for k in conv)
    assert second["epoch"] == 1 and second["config"]["run"]["init"].endswith("last.pt")


def test_teacher_view_flip_averages_and_resizes_to_the_students_grid():
    from posedistill.inference.network import flip_heatmaps
    from posedistill.skeleton import LSP
    from posedistill.training.teacher_model import TeacherView

    torch.manual_seed(0)
    model = build_model("hg1_32", num_joints=14).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        plain = model(images)[-1].float()
        mirrored = flip_heatmaps(model(images.flip(-1))[-1].float(), LSP.flip_index)
    flip = TeacherView(16, flip_index=tuple(LSP.flip_index))(model, images)
    torch.testing.assert_close(flip, (plain + mirrored) / 2)
    assert not torch.allclose(flip, plain)
    torch.testing.assert_close(TeacherView(16)(model, images), plain)
    # a 128-input teacher on the 64-input student's crops: its 32x32 heatmaps come back on the 16x16 grid
    big = TeacherView(16, input_size=128)(model, images)
    with torch.inference_mode():
        up = model(torch.nn.functional.interpolate(images, size=(128, 128), mode="bilinear"))[-1].float()
    assert big.shape == (2, 14, 16, 16)
    torch.testing.assert_close(big, torch.nn.functional.interpolate(up, size=(16, 16), mode="bilinear"))


def test_distill_with_a_flip_averaged_teacher_at_its_own_input_size(tmp_path):
    teacher = _teacher_ckpt(tmp_path / "t128.pt", input_size=128)
    cfg = tiny_cfg(train__epochs=1, data__val="", distill__teacher_flip=True, distill__teacher_input_size=128,
                   run__teacher=str(teacher))
    Trainer(cfg, tmp_path / "fpd", progress=False).fit()
    assert float(read_log(tmp_path / "fpd")[0]["loss_kd"]) > 0
    saved = load_checkpoint(tmp_path / "fpd" / "last.pt")["config"]["distill"]
    assert saved["teacher_flip"] is True and saved["teacher_input_size"] == 128
    with pytest.raises(ConfigError, match="teacher_input_size"):
        tiny_cfg(distill__teacher_input_size=100)


def test_resume_reads_the_runs_inputs_from_its_config_and_needs_no_init_file(tmp_path):
    """A run started with --init resumes from its own config.yaml (which names the init checkpoint) even when that
    checkpoint is gone: resuming restores last.pt, the init file is not read again."""
    from click.testing import CliRunner

    from posedistill.cli import main as cli

    Trainer(tiny_cfg(train__epochs=1, data__val=""), tmp_path / "first", progress=False).fit()
    init = tmp_path / "init.pt"
    init.write_bytes((tmp_path / "first" / "last.pt").read_bytes())
    run = tmp_path / "run"
    Trainer(tiny_cfg(train__epochs=2, data__val="", run__init=str(init)), run, progress=False).fit(stop_after=1)
    init.unlink()
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    assert yaml.safe_load((run / "config.yaml").read_text())["run"]["init"] == str(init)
