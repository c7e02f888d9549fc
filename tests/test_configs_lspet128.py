"""The issue-12 configs (configs/lspet128/): they load, and every student shares the teacher's recipe."""

from pathlib import Path

import pytest

from posedistill.config import load_config

ROOT = Path(__file__).resolve().parents[1] / "configs" / "lspet128"
LONG = ["teacher_hg4_128", "student_hg2_64", "fpd_hg2_64"]


@pytest.mark.parametrize("name", [p.stem for p in sorted(ROOT.glob("*.yaml"))])
def test_config_loads(name):
    cfg = load_config(ROOT / f"{name}.yaml")
    assert cfg.data.input_size == 128 and cfg.data.train == "train6500" and cfg.data.val == "val"


def test_students_share_seed_schedule_and_loss_with_the_teacher():
    cfgs = {n: load_config(ROOT / f"{n}.yaml") for n in LONG}
    teacher = cfgs["teacher_hg4_128"]
    for name in LONG[1:]:
        c = cfgs[name]
        assert c.model.name == "hg2_64" and c.model.depth == teacher.model.depth == 3
        for section in ("data", "optim", "schedule", "loss", "train"):
            assert getattr(c, section) == getattr(teacher, section), (name, section)
        assert c.seed == teacher.seed
    assert cfgs["fpd_hg2_64"].distill.alpha == 0.5


def test_init_runs_differ_from_their_control_only_in_alpha():
    fpd, control = (load_config(ROOT / f"{n}.yaml") for n in ("fpd_hg2_64_init", "fpd_hg2_64_init_a0"))
    assert (fpd.distill.alpha, control.distill.alpha) == (0.5, 0.0)
    for section in ("model", "data", "optim", "schedule", "loss", "train"):
        assert getattr(fpd, section) == getattr(control, section), section
    assert fpd.seed == control.seed and fpd.train.epochs < load_config(ROOT / "fpd_hg2_64.yaml").train.epochs


def test_restarts_share_the_teachers_second_cycle_and_differ_only_in_alpha():
    names = ("teacher_hg4_128_restart", "fpd_hg2_64_restart", "student_hg2_64_restart")
    teacher, fpd, twin = (load_config(ROOT / f"{n}.yaml") for n in names)
    for section in ("data", "optim", "schedule", "loss", "train"):
        assert getattr(fpd, section) == getattr(twin, section) == getattr(teacher, section), section
    assert fpd.model == twin.model and fpd.seed == twin.seed == teacher.seed
    assert (fpd.distill.alpha, twin.distill.alpha) == (0.5, 0.0)
    assert teacher.optim.lr < load_config(ROOT / "teacher_hg4_128.yaml").optim.lr


def test_negatives_fine_tunes_share_their_recipe():
    first, second = (load_config(ROOT / f"{n}.yaml") for n in ("fpd_hg2_64_neg", "fpd_hg2_64_restart_neg"))
    for section in ("model", "data", "optim", "schedule", "loss", "train", "distill"):
        assert getattr(first, section) == getattr(second, section), section
    assert second.data.augment.negative_prob == 0.2 and second.distill.alpha == 0.0
