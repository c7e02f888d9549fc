import csv
import json

import pytest
import torch
from click.testing import CliRunner

from posedistill.models.checkpoint import load_checkpoint
from posedistill.cli import main
from posedistill.models import build_model
from posedistill.data import read_lspet
from posedistill.quickstart import QuickstartSettings, embedded_data_dir, run_quickstart

from helpers import make_checkpoint, model_meta, tiny_cfg


def test_embedded_data_is_real_lspet_in_its_layout():
    root = embedded_data_dir()
    records = read_lspet(root)
    assert len(records) == 650
    assert (root / "README.md").read_text().count("LSPET") >= 1
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) < 5.5e6


def test_embedded_images_were_never_trained_on_by_the_shipped_models():
    rows = (embedded_data_dir() / "sources.csv").read_text().split()[1:]
    lspet = {local: int(src[2:7]) for local, src in (r.split(",") for r in rows)}
    assert len(lspet) == 650 and len(set(lspet.values())) == 650
    adapt = [lspet[f"im{k:05d}.jpg"] for k in range(1, 501)]
    held = [lspet[f"im{k:05d}.jpg"] for k in range(501, 651)]
    assert all(6501 <= i <= 7000 for i in adapt)  # LSPET's validation slice (the shipped models train on 1-6500)
    assert all(7001 <= i <= 7500 for i in held)  # LSPET's test slice


def _tiny_checkpoint(path, model_name, seed, *, input_size=64, **overrides):
    torch.manual_seed(seed)
    cfg = tiny_cfg(model__name=model_name, data__input_size=input_size, **overrides)
    model = build_model(model_name, num_joints=14)
    return make_checkpoint(path, model, model_meta(model, model_name, input_size), config=cfg.to_dict())


def test_quickstart_evaluates_shipped_models_and_adapts_the_student_both_ways(tmp_path):
    # a teacher of a larger input, and a student trained with warped targets (which need a pre-built directory
    # and refuse unlabeled photos): the quickstart's FPD runs the teacher on every crop, at its own input size
    teacher = _tiny_checkpoint(tmp_path / "teacher.pt", "hg2_32", 0, input_size=128)
    student = _tiny_checkpoint(tmp_path / "student.pt", "hg1_32", 1, distill__teacher_targets="warped",
                               distill__teacher_flip=True)
    s = QuickstartSettings(teacher=teacher, student=student, adapt_epochs=1, batch_size=8, labeled_range="1-16",
                           unlabeled_range="17-24", test_range="501-516")
    assert s.control_epochs() == 2  # 3 steps of FPD over 24 images, 2 an epoch over the 16 labeled ones
    rows = run_quickstart(tmp_path / "qs", s, progress=False, log=lambda *_: None)
    assert [r["role"] for r in rows] == ["teacher", "student", "adapted_gt", "adapted_fpd"]
    assert [r["model"] for r in rows] == ["hg2_32", "hg1_32", "hg1_32", "hg1_32"]
    saved = json.loads((tmp_path / "qs" / "results.json").read_text())
    for row in saved:
        assert 0.0 <= row["pck"] <= 100.0 and row["gmacs"] > 0 and row["latency_ms"] > 0
    assert saved[0]["gmacs"] > saved[1]["gmacs"] == saved[2]["gmacs"]
    md = (tmp_path / "qs" / "results.md").read_text()
    assert "| student adapted by FPD from the teacher, unlabeled images too | hg1_32 | 64 |" in md
    assert "the 16 held-aside people" in md and "ground truth 2 epochs on images 1-16" in md
    logs = {role: list(csv.DictReader((tmp_path / "qs" / role / "log.csv").open()))
            for role in ("adapted_gt", "adapted_fpd")}
    assert float(logs["adapted_fpd"][0]["loss_kd"]) > 0  # the teacher term was used
    assert float(logs["adapted_gt"][0]["loss_kd"]) == 0  # the control has none
    for role, epochs in (("adapted_gt", 2), ("adapted_fpd", 1)):  # both started from the student
        ckpt = load_checkpoint(tmp_path / "qs" / role / "last.pt")
        assert ckpt["config"]["run"]["init"] == str(student) and ckpt["config"]["train"]["epochs"] == epochs
        assert ckpt["config"]["data"]["train"] == "1-16"
    fpd_config = load_checkpoint(tmp_path / "qs" / "adapted_fpd" / "last.pt")["config"]
    assert fpd_config["run"]["unlabeled"]
    assert fpd_config["distill"]["teacher_targets"] == "augmented" and fpd_config["distill"]["teacher_input_size"] == 128
    assert not load_checkpoint(tmp_path / "qs" / "adapted_gt" / "last.pt")["config"]["run"]["unlabeled"]
    assert len(list((tmp_path / "qs" / "unlabeled_images").iterdir())) == 8  # the FPD run's --unlabeled folder
    # the report reads the quickstart like any runs; the alpha-0 row is labelled as the control
    from posedistill.report.runs import load_runs

    entries = {e.label: e for e in load_runs([tmp_path / "qs"])}
    assert set(entries) == {r["label"] for r in rows}
    assert entries["student adapted by FPD from the teacher, unlabeled images too"].mode == "distill"


def test_quickstart_refuses_a_non_empty_output(tmp_path):
    (tmp_path / "x").write_text("keep")
    res = CliRunner().invoke(main, ["quickstart", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "not empty" in res.stderr
    assert (tmp_path / "x").read_text() == "keep"
