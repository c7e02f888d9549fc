"""`posedistill bench` on tiny models (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from posedistill.bench.benchmark import format_table, measure_peak_gmacs, run_benchmark, summarize, tune_malloc
from posedistill.cli import main
from posedistill.errors import ConfigError


def test_peak_and_malloc():
    assert measure_peak_gmacs(n=256, repeats=2, threads=1) > 0.1
    assert isinstance(tune_malloc(), bool)


@pytest.mark.slow  # exports and quantizes two models; test_bench_cli_json covers the command
def test_run_benchmark_rows_and_table(tmp_path):
    result = run_benchmark(["hg2_32", "hg1_32"], input_sizes=(64,), batches=(1, 2), repeats=1, warmup=0,
                           threads=1, progress=False, workdir=tmp_path)
    rows = result["rows"]
    assert len(rows) == 2 * 3 * 2
    assert {(r["model"], r["backend"], r["batch"]) for r in rows} == {
        (m, b, n) for m in ("hg2_32", "hg1_32") for b in ("torch", "onnx", "onnx-int8") for n in (1, 2)}
    for r in rows:
        assert r["latency_ms"] > 0 and r["p90_ms"] >= r["latency_ms"] and r["gmacs"] > 0
    two = next(r for r in rows if r["model"] == "hg1_32" and r["batch"] == 2)
    one = next(r for r in rows if r["model"] == "hg1_32" and r["batch"] == 1)
    assert two["gmacs"] == pytest.approx(2 * one["gmacs"])
    table = format_table(result, teacher="hg2_32", student="hg1_32")
    assert "stu/tea" in table and "ort/eager" in table and "%peak" in table
    assert any("compute-bound limit" in line for line in summarize(result, teacher="hg2_32", student="hg1_32"))
    assert (tmp_path / "hg1_32_64_int8.onnx").is_file()


def test_bench_cli_json(tmp_path):
    out = tmp_path / "b.json"
    res = CliRunner().invoke(main, ["bench", "--teacher", "hg1_64", "--student", "hg1_32", "--sizes", "64",
                                    "--batches", "1", "--backends", "torch,onnx", "--repeats", "1",
                                    "--warmup", "0", "--threads", "1", "--json", str(out), "--no-progress",
                                    "--no-interleave"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["peak_gmacs_per_s"] > 0
    assert {r["backend"] for r in data["rows"]} == {"torch", "onnx"}
    for r in data["rows"]:
        assert {"model", "backend", "input_size", "batch", "latency_ms", "p90_ms", "gmacs"} <= r.keys()


def test_bench_bad_options():
    with pytest.raises(ConfigError):
        run_benchmark(["hg1_32"], backends=["tensorrt"], progress=False)
    with pytest.raises(ConfigError):
        run_benchmark(["hg1_32"], input_sizes=(100,), progress=False)
    res = CliRunner().invoke(main, ["bench", "--teacher", "hg9_9"])
    assert res.exit_code == 2 and "hg9_9" in res.output


def test_each_backend_is_timed_in_its_own_process_and_same_process_still_works(tmp_path, monkeypatch):
    import posedistill.bench.benchmark as bench

    launched = []
    real_run = bench.subprocess.run

    def spy(cmd, **kw):
        launched.append(cmd)
        return real_run(cmd, **kw)

    monkeypatch.setattr(bench.subprocess, "run", spy)
    own = run_benchmark(["hg1_32", "hg2_32"], input_sizes=(64,), batches=(1,), repeats=1, warmup=0, threads=1,
                        progress=False, workdir=tmp_path)
    # eager torch in one process; every ONNX file in one of its own (one ORT session, one thread pool, per process)
    expected = ["torch", "onnx", "onnx", "onnx-int8", "onnx-int8"]
    assert [c[-1].rsplit("_", 1)[1] for c in launched] == [f"{b}.json" for b in expected]
    assert all("-I" in c for c in launched)
    specs = [json.loads(Path(c[-2]).read_text()) for c in launched]
    assert [len({r["path"] for r in spec["rows"]}) for spec in specs[1:]] == [1, 1, 1, 1]
    # the ORT workers did not load torch (run_benchmark raises otherwise); their results are what came back
    for n, b in enumerate(expected):
        loaded = json.loads((tmp_path / f"times_{n}_{b}.json").read_text())["torch_loaded"]
        assert loaded is (b == "torch")
    assert own["settings"]["process"] == "own" and own["peak_gmacs_per_s"] > 0
    assert len(own["rows"]) == 6 and all(r["latency_ms"] > 0 for r in own["rows"])
    launched.clear()
    shared = run_benchmark(["hg1_32"], input_sizes=(64,), batches=(1,), backends=["onnx"], repeats=1, warmup=0,
                           threads=1, progress=False, isolate=False)
    assert not launched and shared["settings"]["process"] == "shared" and shared["rows"][0]["latency_ms"] > 0
