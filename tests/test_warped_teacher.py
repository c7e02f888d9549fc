"""Warped teacher targets: the teacher's heatmaps of each person's plain crop, carried into the augmented crop."""

import dataclasses

import numpy as np
import pytest
import torch
import yaml

from posedistill.codec import HeatmapCodec
from posedistill.data import PoseDataset
from posedistill.data.readers import read_dataset
from posedistill.errors import ConfigError
from posedistill.models import build_model
from posedistill.training import Trainer
from posedistill.training.teacher_files import training_dataset
from posedistill.training.warped_teacher import WarpedTargets, build_warped_targets, warp_heatmaps

from helpers import make_checkpoint, model_meta, pixels, tiny_cfg, with_run


def warped_cfg(**over):
    cfg = tiny_cfg(**{"data__train": "1-16", "data__val": "", "train__epochs": 2, **over})
    return dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, teacher_targets="warped"))


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    """An untrained hg2_32 teacher at 128 input: twice the students' 64."""
    torch.manual_seed(1)
    model = build_model("hg2_32")
    return make_checkpoint(tmp_path_factory.mktemp("teacher") / "teacher.pt", model, model_meta(model, "hg2_32", 128))


def test_warp_between_equal_crops_is_the_identity():
    hm = torch.rand(3, 14, 16, 16)
    m = torch.tensor([[[0.5, 0.1, 3.0], [-0.1, 0.5, 7.0]]], dtype=torch.float64).expand(3, 2, 3)
    assert torch.allclose(warp_heatmaps(hm, m, 64, m, 64, 16), hm, atol=1e-5)
    # the same crop on a grid half as fine: bilinear downsampling, which keeps a constant map constant
    flat = torch.ones(3, 14, 16, 16)
    out = warp_heatmaps(flat, m, 64, m, 64, 8)
    assert out.shape == (3, 14, 8, 8) and torch.allclose(out, torch.ones_like(out), atol=1e-5)


def test_warped_ground_truth_lands_on_the_augmented_joints(lspet_mini):
    """A 'teacher' that answers the ground truth: its heatmaps of the plain 128 crop, warped into each augmented
    64 crop (rotation, scale, mirror with left/right swapped), peak where the augmented crop's own targets do."""
    records = read_dataset("lspet", lspet_mini)
    plain = PoseDataset(records, meta=pixels("lsp", 128), train=False)
    aug = PoseDataset(records, meta=pixels("lsp", 64), train=True, seed=4)
    codec = HeatmapCodec(input_size=64, sigma=2.0, stride=4)
    flips = 0
    for epoch in range(4):
        for i in range(len(records)):
            p, a = plain[(epoch, i)], aug[(epoch, i)]
            flips += bool(a["flipped"])
            out = warp_heatmaps(p["target"][None], p["matrix"][None], 128, a["matrix"][None], 64, 16,
                                a["flipped"][None], aug.joint_set.flip_index)[0]
            got, _ = codec.decode(out.numpy()[None])
            want, _ = codec.decode(a["target"].numpy()[None])
            both = (p["target_weight"][aug.joint_set.flip_index if a["flipped"] else slice(None)] > 0) & (
                a["target_weight"] > 0)
            assert both.sum() >= 8
            # within half of the 64 crop's 4-pixel heatmap cell (the decoder's quarter-cell steps), mostly exact:
            # the two targets are the same joints (left and right lie further apart)
            error = np.abs(got[0] - want[0])[both.numpy()]
            assert error.max() <= 2.0 and error.mean() < 0.5, (epoch, i)
    assert flips >= 2  # the mirror and its joint swap were exercised


def test_build_and_distill_from_warped_targets(tmp_path, teacher_ckpt):
    cfg = warped_cfg()
    store = build_warped_targets(teacher_ckpt, cfg, tmp_path / "targets", batch_size=5, progress=False)
    assert store.shape == (16, 14, 32, 32) and store.input_size == 128
    # the stored heatmaps are the teacher's of each person's plain 128 crop
    ds, _ = training_dataset(cfg)
    plain = PoseDataset(ds.records, meta=pixels("lsp", 128), train=False)
    teacher = build_model("hg2_32")
    teacher.load_state_dict(torch.load(teacher_ckpt, weights_only=True)["model"])
    teacher.eval()
    with torch.inference_mode():
        expect = teacher(torch.stack([plain[i]["image"] for i in (2, 9)]))[-1]
    assert torch.allclose(torch.from_numpy(np.asarray(store.heatmaps[[2, 9]])), expect, atol=1e-5)
    assert np.allclose(store.matrices[9].numpy(), plain[9]["matrix"].numpy())
    # a second build for the same teacher and people reuses the directory
    again = build_warped_targets(teacher_ckpt, cfg, tmp_path / "targets", progress=False)
    assert again.meta["teacher"]["sha256"] == store.meta["teacher"]["sha256"]
    # a student distilled from them trains, and the run records where its targets came from
    summary = Trainer(with_run(cfg, teacher=teacher_ckpt, teacher_cache=tmp_path / "targets"), tmp_path / "run",
                      progress=False).fit()
    losses = [row["loss_kd"] for row in summary["history"]]
    assert len(losses) == 2 and all(np.isfinite(losses)) and losses[0] > 0
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert resolved["distill"]["teacher_targets"] == "warped"
    assert resolved["run"]["teacher_cache"] == str(tmp_path / "targets")


def test_warped_targets_refuse_other_people_and_teachers(tmp_path, teacher_ckpt):
    cfg = warped_cfg()
    build_warped_targets(teacher_ckpt, cfg, tmp_path / "targets", progress=False)
    other_people = warped_cfg(data__train="1-12")
    with pytest.raises(ConfigError, match="train_split is .1-16. there, .1-12. in the config"):
        Trainer(with_run(other_people, teacher_cache=tmp_path / "targets"), tmp_path / "r1", progress=False).fit()
    flipped = dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, teacher_flip=True))
    with pytest.raises(ConfigError, match="teacher_flip"):
        WarpedTargets(tmp_path / "targets").validate(flipped)
    torch.manual_seed(2)
    model = build_model("hg2_32")
    other = make_checkpoint(tmp_path / "other.pt", model, model_meta(model, "hg2_32", 128))
    with pytest.raises(ConfigError, match="other settings \\(teacher"):
        build_warped_targets(other, cfg, tmp_path / "targets", progress=False)
    with pytest.raises(ConfigError, match="built from another teacher"):
        WarpedTargets(tmp_path / "targets").validate(cfg, teacher=other)
    # the per-epoch cache's reader does not take a warped directory, nor the other way round
    from posedistill.errors import DataError
    from posedistill.training.teacher_cache import TeacherCache

    with pytest.raises(DataError, match="not a posedistill-teacher-cache directory"):
        TeacherCache(tmp_path / "targets")
    # warped targets need a directory; unlabeled images have no training person to warp from
    with pytest.raises(ConfigError, match="give --teacher-cache DIR"):
        Trainer(with_run(cfg, teacher=teacher_ckpt), tmp_path / "r2", progress=False).fit()
    with pytest.raises(ConfigError, match="labeled training people only"):
        with_run(cfg, teacher=teacher_ckpt, unlabeled=tmp_path).validate()


def test_distill_command_builds_warped_targets_then_trains(tmp_path, teacher_ckpt, capsys):
    from click.testing import CliRunner

    from posedistill.cli import main
    from posedistill.quickstart import embedded_data_dir
    from posedistill.training import teacher_cache

    sets = [f"data.root={embedded_data_dir()}", "data.train=1-8", "data.val=", "data.input_size=64",
            "data.workers=0", "model.name=hg1_32", "train.epochs=1", "train.batch_size=4",
            "distill.teacher_targets=warped"]
    args = ["distill", "--out", str(tmp_path / "run"), "--teacher", str(teacher_ckpt), "--teacher-cache",
            str(tmp_path / "targets"), "--no-progress", "--device", "cpu"]
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert WarpedTargets(tmp_path / "targets").shape == (8, 14, 32, 32)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["run"]["mode"] == "distill"
    # the module's builder makes the same kind from the same settings (here: finds them complete)
    module_args = ["--teacher", str(teacher_ckpt), "--out", str(tmp_path / "targets"), "--no-progress"]
    for s in sets:
        module_args += ["--set", s]
    teacher_cache.main(module_args)
    assert "warped teacher targets" in capsys.readouterr().out
