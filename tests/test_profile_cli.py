import json

from click.testing import CliRunner

from posedistill.cli import main
from posedistill.bench.profiling import profile_models, time_call


def test_profile_function_fields():
    rows = profile_models(["hg1_32", "hg2_32_dw"], input_size=64, repeats=2, warmup=1)
    assert [r["name"] for r in rows] == ["hg1_32", "hg2_32_dw"]
    r = rows[0]
    assert (r["stacks"], r["channels"], r["input_size"]) == (1, 32, 64)
    assert r["params"] > 0 and r["gmacs"] > 0 and r["latency_ms"] > 0 and r["p90_ms"] >= r["latency_ms"]


def test_time_call_orders_percentiles():
    t = time_call(lambda: sum(range(1000)), repeats=5, warmup=1)
    assert 0 < t["median_ms"] <= t["p90_ms"]


def test_profile_json(tmp_path):
    out = tmp_path / "p.json"
    res = CliRunner().invoke(main, ["profile", "--models", "hg1_32,hg2_64", "--input-size", "128",
                                    "--repeats", "2", "--warmup", "0", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert [r["name"] for r in rows] == ["hg1_32", "hg2_64"]
    for r in rows:
        assert {"name", "stacks", "channels", "params", "gmacs", "latency_ms", "input_size"} <= r.keys()
        assert r["input_size"] == 128
    # GMACs scale with input area: 4x from 64 to 128
    small = profile_models(["hg2_64"], input_size=64, latency=False)[0]
    assert abs(rows[1]["gmacs"] / small["gmacs"] - 4) < 0.01
    assert rows[1]["params"] > rows[0]["params"]
    assert "hg2_64/hg1_32" in res.output


def test_profile_unknown_model_is_one_line_error():
    res = CliRunner().invoke(main, ["profile", "--models", "hg9_9"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown model 'hg9_9'" in lines[0] and "hg4_128" in lines[0]
    assert "Traceback" not in res.output


def test_profile_bad_size_is_one_line_error():
    res = CliRunner().invoke(main, ["profile", "--models", "hg1_32", "--input-size", "100"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: input size must be a positive multiple of 64, got 100"


def test_help_lists_profile():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0 and "profile" in res.output
