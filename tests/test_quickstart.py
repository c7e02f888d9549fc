import json

import pytest
from click.testing import CliRunner

from posedistill.cli import main
from posedistill.data import read_lspet
from posedistill.quickstart import QuickstartSettings, embedded_data_dir, run_quickstart


def test_embedded_data_is_real_lspet_in_its_layout():
    root = embedded_data_dir()
    records = read_lspet(root)
    assert len(records) == 600
    assert (root / "README.md").read_text().count("LSPET") >= 1
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) < 5.5e6


@pytest.mark.slow
def test_quickstart_writes_the_table(tmp_path):
    s = QuickstartSettings(teacher="hg1_32", student="hg1_32", input_size=64, teacher_epochs=1, student_epochs=1,
                           batch_size=8, limit=16, test_range="501-516")
    rows = run_quickstart(tmp_path / "qs", s, progress=False, log=lambda *_: None)
    assert [r["role"] for r in rows] == ["teacher", "student", "student_fpd"]
    saved = json.loads((tmp_path / "qs" / "results.json").read_text())
    for row in saved:
        assert {"model", "params", "gmacs", "latency_ms", "pck"} <= row.keys()
        assert 0.0 <= row["pck"] <= 100.0 and row["gmacs"] > 0 and row["latency_ms"] > 0
    md = (tmp_path / "qs" / "results.md").read_text()
    assert "| hg1_32 | student_fpd |" in md
    for role in ("teacher", "student", "student_fpd"):
        assert (tmp_path / "qs" / role / "last.pt").is_file()
        assert (tmp_path / "qs" / role / "log.csv").is_file()
    fpd_log = (tmp_path / "qs" / "student_fpd" / "log.csv").read_text().splitlines()
    assert float(fpd_log[1].split(",")[4]) > 0  # the distillation term was used
    # every model's folder is an ordinary run directory: the report reads the quickstart like any runs
    from posedistill.report import load_runs

    entries = {e.label: e for e in load_runs([tmp_path / "qs"])}
    assert sorted(entries) == ["student", "student_fpd", "teacher"]
    assert entries["student_fpd"].mode == "distill" and entries["teacher"].pck_mean(flip=True) is not None


def test_quickstart_refuses_a_non_empty_output(tmp_path):
    (tmp_path / "x").write_text("keep")
    res = CliRunner().invoke(main, ["quickstart", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "not empty" in res.stderr
    assert (tmp_path / "x").read_text() == "keep"
