"""`posedistill report`: tables, Pareto front and figures from synthetic run directories (JSON written here)."""

import json
import shlex

import pytest
import torch
import yaml

from posedistill.config import ExperimentConfig, load_config
from posedistill.errors import DataError
from posedistill.report.markdown import build_report
from posedistill.report.plots import pareto_front
from posedistill.report.runs import evaluate_command, load_runs, training_command

JOINTS = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
          "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top"]


def make_run(root, name, *, model, pck_flip=None, pck_noflip=None, cost=None, mode="train", alpha=0.5,
             teacher=None, init=None, control=None, train="train"):
    run = root / name
    run.mkdir(parents=True)
    config = ExperimentConfig().to_dict()
    config["name"] = name
    config["model"]["name"] = model
    config["data"]["input_size"] = 128
    config["data"]["train"] = train
    config["distill"]["alpha"] = alpha
    config["run"] = {"mode": mode, "teacher": teacher, "init": init, "unlabeled": None, "control": control}
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (run / "metrics.json").write_text(json.dumps({"model": model, "best_val_pck": 50.0, "history": []}))
    for flip, pck in ((True, pck_flip), (False, pck_noflip)):
        if pck is None:
            continue
        per_joint = [pck + (j - 6.5) / 5 for j in range(14)]  # one decimal each, mean = pck
        ev = {"checkpoint": str(run / "best.pt"), "data": "data/lspet", "dataset": "lspet", "split": "test",
              "flip": flip, "multi_scale": False, "joint_names": JOINTS, "threshold": 0.2, "num_people": 500,
              "pck": {"mean": sum(per_joint) / 14, "per_joint": per_joint, "count": [500] * 14}, "auc": pck / 2}
        (run / f"eval_test{'' if flip else '_noflip'}.json").write_text(json.dumps(ev))
    if cost is not None:
        (run / "cost.json").write_text(json.dumps(cost))
    return run


@pytest.fixture
def runs(tmp_path):
    r = tmp_path / "runs"
    return [
        make_run(r, "teacher", model="hg4_128", pck_flip=80.0, pck_noflip=78.0,
                 cost={"params": 3_000_000, "gmacs": 4.0, "latency_ms": 40.0}),
        make_run(r, "student", model="hg2_64", pck_flip=70.0, pck_noflip=68.5,
                 cost={"params": 800_000, "gmacs": 1.0, "latency_ms": 10.0}),
        make_run(r, "fpd", model="hg2_64", pck_flip=74.0, pck_noflip=72.0, mode="distill",
                 teacher=str(r / "teacher" / "best.pt"), control=str(r / "student"),
                 cost={"params": 800_000, "gmacs": 1.0, "latency_ms": 11.0}),
        make_run(r, "bin", model="hg2_64_bin", pck_flip=60.0,
                 cost={"params": 700_000, "gmacs": 0.9, "latency_ms": 12.0, "note": "binary weights",
                       "commands": ["posedistill export x --int8"]}),
        make_run(r, "big_bad", model="hg4_64", pck_flip=65.0, train="train6500",
                 cost={"params": 1_500_000, "gmacs": 2.0, "latency_ms": 20.0}),
    ]


def test_pareto_front():
    pts = [(4.0, 80.0), (1.0, 70.0), (1.0, 74.0), (0.9, 60.0), (2.0, 65.0), (0.9, 60.0)]
    assert pareto_front(pts) == [True, False, True, True, False, True]
    assert pareto_front([]) == [] and pareto_front([(1.0, 1.0)]) == [True]


def test_report_tables_front_and_figures(tmp_path, runs):
    out = tmp_path / "docs"
    summary = build_report(runs, out, command="posedistill report runs/* --out docs")
    for name in ("results.md", "results.json", "pck_vs_gflops.png", "pck_vs_latency.png"):
        assert (out / name).is_file(), name
    for png in ("pck_vs_gflops.png", "pck_vs_latency.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / png).stat().st_size > 10_000
    # GFLOPs: the student (1.0, 70) is dominated by the FPD student (1.0, 74), big_bad by fpd
    assert summary["pareto_front"]["pck_vs_gflops.png"] == ["teacher", "fpd", "bin"]
    # latency: fpd (11 ms) is slower than student (10 ms), so both are on that front; bin (12 ms) is not
    assert summary["pareto_front"]["pck_vs_latency.png"] == ["teacher", "student", "fpd"]
    md = (out / "results.md").read_text()
    table = md.split("## Accuracy and cost")[1].split("##")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert rows["teacher"].startswith("| teacher | hg4_128 | 128 | train | ground truth | 3.000 | 4.000 | 40.0 | 80.0 | 78.0 |")
    assert rows["fpd"].startswith("| fpd | hg2_64 | 128 | train | FPD alpha=0.5 from teacher | 0.800 | 1.000 | 11.0 | 74.0 | 72.0 |")
    assert rows["big_bad"].startswith("| big_bad | hg4_64 | 128 | train6500 | ground truth |")  # the training set
    assert "`train` is im00001-06500 and im07501-09800, 8,800 people, and `train6500` im00001-06500 alone" in md
    assert "posedistill export x --int8" in md.split("**bin**")[1]
    assert rows["bin"].startswith("| bin | hg2_64_bin | 128 | train | ground truth; binary weights | 0.700 | 0.900 | 12.0 | 60.0 | – |")
    # per-joint tables (flip and no flip) with the JSON's values
    assert "## PCK@0.2 per joint, with flip test" in md and "## PCK@0.2 per joint, without flip test" in md
    assert "| run | r_ankle | r_knee |" in md
    assert "| teacher | 78.7 | 78.9 | 79.1 |" in md and "| 81.3 | 80.0 |" in md  # 80 + (j - 6.5) / 5, mean
    # the figures name the command; commands to reproduce every run are listed
    assert md.count("made by `posedistill report runs/* --out docs`") == 2
    assert "Pareto front (red): teacher, fpd, bin." in md
    assert "posedistill distill --out" in md and "--teacher" in md and "--set distill.alpha" not in md
    assert "posedistill evaluate" in md and "--no-flip" in md
    data = json.loads((out / "results.json").read_text())
    assert [r["label"] for r in data["runs"]] == ["teacher", "student", "fpd", "bin", "big_bad"]


def test_fpd_gain_gap_and_alpha_sweep(tmp_path, runs):
    r = runs[0].parent
    teacher = str(r / "teacher" / "best.pt")
    extra = [make_run(r, f"fpd_a{a}", model="hg2_64", pck_flip=p, mode="distill", alpha=a, teacher=teacher,
                      control=str(r / "student"), cost={"params": 800_000, "gmacs": 1.0, "latency_ms": 11.0})
             for a, p in ((0.25, 72.0), (1.0, 71.0))]
    for name, a, p in (("init_a0.5", 0.5, 76.0), ("init_a0", 0.0, 73.0)):
        extra.append(make_run(r, name, model="hg2_64", pck_flip=p, mode="distill", alpha=a, teacher=teacher,
                              init=str(r / "student" / "best.pt"), control=str(r / "init_a0") if a else None,
                              cost={"params": 800_000, "gmacs": 1.0, "latency_ms": 11.0}))
    history = [{"epoch": 1, "epoch_time_s": 90.0}, {"epoch": 2, "epoch_time_s": 30.0}]
    (runs[1] / "metrics.json").write_text(json.dumps({"best_val_pck": 69.0, "history": history}))
    out = tmp_path / "docs"
    build_report([*runs, *extra], out, command="posedistill report x --out docs")
    md = (out / "results.md").read_text()
    table = md.split("## Accuracy and cost")[1].split("##")[0]
    assert "| 69.0 | 2 | 2.0 |" in table  # best val, epochs, minutes from the engine's history
    fpd = md.split("## FPD students against their baselines")[1].split("##")[0]
    # gain over the ground-truth hg2_64 (70) and gap to the teacher (80); cost ratio 1 / 4
    assert "| fpd | FPD alpha=0.5 from teacher | 70.0 | 74.0 | +4.0 | 80.0 | 6.0 | 0.250 |" in fpd
    assert "| fpd_a1.0 | FPD alpha=1 from teacher | 70.0 | 71.0 | +1.0 | 80.0 | 9.0 | 0.250 |" in fpd
    # a student started from another run names the same start at alpha 0 as its control
    assert "| init_a0.5 | FPD alpha=0.5 from teacher, init student | 73.0 | 76.0 | +3.0 | 80.0 | 4.0 |" in fpd
    # the alpha-0 control is the baseline of the init runs, never an FPD row with a "gain" of its own
    assert "| init_a0 |" not in fpd
    assert "| init_a0 | hg2_64 | 128 | train | ground truth only (alpha-0 control of the FPD runs), init student |" in table
    sweep = md.split("## Alpha sweep: hg2_64 at 128x128")[1].split("##")[0]
    alphas = [line.split(" | ")[0].strip("| ") for line in sweep.splitlines() if line.startswith("| ")][2:]
    assert alphas == ["0", "0.25", "0.5", "1"]  # alpha 0 is the control the sweep's runs name
    assert "| 0 | student | 70.0 |" in sweep


def test_costs_computed_when_not_stored_and_a_folder_of_runs(tmp_path):
    r = tmp_path / "runs"
    plain = make_run(r, "tiny", model="hg1_32", pck_flip=50.0)
    quick = r / "quick"  # laid out as the quickstart writes it: one ordinary run directory per model
    make_run(quick, "teacher", model="hg2_64", pck_flip=60.0,
             cost={"label": "teacher", "params": 1, "gmacs": 0.5, "latency_ms": 5.0})
    make_run(quick, "student_fpd", model="hg1_32", pck_flip=55.0, mode="distill",
             teacher=str(quick / "teacher" / "last.pt"),
             cost={"label": "student_fpd", "params": 1, "gmacs": 0.1, "latency_ms": 2.0})
    summary = build_report([plain, quick], tmp_path / "docs", latency=False)
    tiny = summary["runs"][0]
    assert tiny["params"] > 0 and tiny["gmacs"] > 0 and tiny["latency_ms"] is None
    assert tiny["cost_source"].startswith("profile_models (input 128")
    assert sorted(r["label"] for r in summary["runs"]) == ["student_fpd", "teacher", "tiny"]
    assert {r["label"]: r["training"] for r in summary["runs"]} == {
        "tiny": "ground truth", "teacher": "ground truth", "student_fpd": "FPD alpha=0.5 from teacher"}
    assert (tmp_path / "docs" / "pck_vs_gflops.png").is_file()


def test_rebuilt_commands_round_trip(tmp_path):
    config = ExperimentConfig().to_dict()
    config["model"]["name"] = "hg2_64"
    config["data"]["train"] = "1-16"
    config["schedule"]["milestones"] = [3, 5]
    config["distill"]["alpha"] = 0.25
    config["run"].update(mode="distill", teacher="runs/t/best.pt", teacher_cache="cache/t", control="runs/s")
    cmd = shlex.split(training_command(config, "runs/x"))
    assert cmd[:4] == ["posedistill", "distill", "--out", "runs/x"]
    assert cmd[cmd.index("--teacher") + 1] == "runs/t/best.pt" and cmd[cmd.index("--control") + 1] == "runs/s"
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    flags = {cmd[i][2:].replace("-", "_"): cmd[i + 1] for i in range(4, len(cmd)) if cmd[i].startswith("--")
             and cmd[i] != "--set"}
    cfg = load_config(None, sets + [f"run.{k}={v}" for k, v in flags.items()] + ["run.mode=distill"])
    assert cfg.to_dict() == config  # the command rebuilds the very config, run inputs included
    ev = {"checkpoint": "runs/x/best.pt", "data": "d", "dataset": "lspet", "split": "test", "flip": False}
    assert evaluate_command(ev, "runs/x/eval.json") == ("posedistill evaluate runs/x/best.pt --data d --dataset "
                                                        "lspet --split test --no-flip --json runs/x/eval.json")


def test_recorded_commands_are_quoted_not_rebuilt(tmp_path):
    """A run and an evaluation made by this version carry their command lines; the report quotes them."""
    from click.testing import CliRunner

    from posedistill.cli import main
    from posedistill.quickstart import embedded_data_dir

    run = tmp_path / "run"
    train = ["train", "--out", str(run), "--model", "hg1_32", "--epochs", "1", "--batch-size", "8", "--no-progress",
             "--set", f"data.root={embedded_data_dir()}", "--set", "data.train=1-8", "--set", "data.val=",
             "--set", "data.input_size=64", "--set", "data.workers=0", "--set", "data.rotation=10"]
    evaluate = ["evaluate", str(run / "last.pt"), "--data", str(embedded_data_dir()), "--split", "9-12",
                "--dark", "--workers", "0", "--json", str(run / "eval_test.json")]
    for args in (train, evaluate):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    ev = json.loads((run / "eval_test.json").read_text())
    assert ev["dark"] is True and ev["sigma"] == 2.0 and ev["stride"] == 4 and ev["input_size"] == 64
    entry = load_runs([run])[0]
    assert entry.commands[0].endswith(shlex.join(train)) and entry.commands[1].endswith(shlex.join(evaluate))
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["invocations"][0]["versions"]["torch"] == torch.__version__


def test_report_cli_and_errors(tmp_path, runs):
    from click.testing import CliRunner

    from posedistill.cli import main

    result = CliRunner().invoke(main, ["report", *map(str, runs[:2]), "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert "Pareto front teacher, student" in result.output
    result = CliRunner().invoke(main, ["report", str(tmp_path / "missing"), "--out", str(tmp_path / "d")])
    assert result.exit_code == 2 and "run directory not found" in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "eval_test.json").write_text("{\"x\": 1}")
    with pytest.raises(DataError, match="not an evaluation JSON"):
        load_runs([bad])


def test_validation_curves_and_depth_aware_costs(tmp_path):
    from posedistill.bench.profiling import profile_models

    r = tmp_path / "runs"
    deep = make_run(r, "d4", model="hg1_32", pck_flip=40.0)
    shallow = make_run(r, "d3", model="hg1_32", pck_flip=41.0)
    config = yaml.safe_load((shallow / "config.yaml").read_text())
    config["model"]["depth"] = 3
    (shallow / "config.yaml").write_text(yaml.safe_dump(config))
    history = [{"epoch": e, "epoch_time_s": 1.0, "val_pck": 10.0 * e} for e in (1, 2, 3)]
    (shallow / "metrics.json").write_text(json.dumps({"best_val_pck": 30.0, "history": history}))
    out = tmp_path / "docs"
    summary = build_report([deep, shallow], out, command="posedistill report x", latency=False)
    md = (out / "results.md").read_text()
    assert (out / "val_curves.png").stat().st_size > 5000
    assert "![validation PCK per epoch](val_curves.png)" in md and "per epoch (the engine's" in md
    runs = {row["label"]: row for row in summary["runs"]}
    assert [tuple(p) for p in runs["d3"]["curve"]] == [(1, 10.0), (2, 20.0), (3, 30.0)]
    expected = {d: profile_models(["hg1_32"], input_size=128, latency=False, depth=d)[0]["gmacs"] for d in (3, 4)}
    assert runs["d3"]["gmacs"] == pytest.approx(expected[3]) and runs["d4"]["gmacs"] == pytest.approx(expected[4])
    assert expected[3] < expected[4]


def test_curve_of_a_run_still_training_comes_from_its_log(tmp_path):
    from posedistill.report.runs import load_runs

    run = make_run(tmp_path / "runs", "going", model="hg1_32")
    (run / "metrics.json").unlink()
    (run / "log.csv").write_text("epoch,lr,loss,val_pck\n1,0.001,0.1,12.5\n2,0.001,0.09,20.0\n3,0.001,0.08,\n")
    (entry,) = load_runs([run])
    assert entry.curve == [(1, 12.5), (2, 20.0)]


def test_a_run_started_from_another_continues_its_curve(tmp_path):
    """A --init run is drawn from the epoch of its parent's best checkpoint on, not from epoch 1."""
    from posedistill.report.plots import curve_starts

    r = tmp_path / "runs"
    parent, alone = (make_run(r, n, model="hg1_32") for n in ("parent", "alone"))
    child = make_run(r, "child", model="hg1_32", init=str(parent / "best.pt"))
    (parent / "log.csv").write_text("epoch,val_pck\n1,10\n2,30\n3,25\n")
    for run in (child, alone):
        (run / "log.csv").write_text("epoch,val_pck\n1,31\n2,32\n")
    for run in (parent, child, alone):
        (run / "metrics.json").unlink()
    entries = load_runs([parent, child, alone])
    assert curve_starts(entries) == {"child": (2, "parent")}  # parent's best.pt is its epoch 2


def test_runs_of_the_same_name_in_two_folders_are_told_apart(tmp_path):
    make_run(tmp_path / "cpu", "student", model="hg2_64", pck_flip=20.0)
    make_run(tmp_path / "lspet128", "student", model="hg2_64", pck_flip=50.0)
    make_run(tmp_path / "lspet128", "teacher", model="hg4_128", pck_flip=60.0)
    labels = [e.label for e in load_runs([tmp_path / "lspet128", tmp_path / "cpu"])]
    assert sorted(labels) == ["cpu/student", "lspet128/student", "teacher"]


def test_fpd_runs_are_compared_with_the_control_they_name(tmp_path, runs):
    """The gain is measured against the run an FPD run names as run.control, whatever its name, settings or
    epochs; nothing is inferred: without a named control (or with one outside the report) there is no gain."""
    r = runs[0].parent
    teacher = str(r / "teacher" / "best.pt")
    fpd = make_run(r, "fpd_restart", model="hg2_64", pck_flip=77.5, mode="distill", teacher=teacher,
                   init=str(r / "fpd" / "snapshot.pt"), control=str(r / "twin_with_any_name"))
    twin = make_run(r, "twin_with_any_name", model="hg2_64", pck_flip=72.0, init=str(r / "student" / "snapshot.pt"))
    unnamed = make_run(r, "fpd_unnamed", model="hg2_64", pck_flip=75.0, mode="distill", teacher=teacher)
    neg = make_run(r, "fpd_neg", model="hg2_64", pck_flip=73.0, mode="distill", alpha=0.0, teacher=teacher,
                   init=str(r / "fpd" / "snapshot.pt"))
    out = tmp_path / "docs"
    build_report([*runs, fpd, twin, unnamed, neg], out, latency=False)
    rows = (out / "results.md").read_text().split("## FPD students against their baselines")[1].split("##")[0]
    assert "| fpd_restart | FPD alpha=0.5 from teacher, init fpd | 72.0 | 77.5 | +5.5 | 80.0 | 2.5 |" in rows
    assert "| fpd | FPD alpha=0.5 from teacher | 70.0 | 74.0 | +4.0 |" in rows
    assert "| fpd_unnamed | FPD alpha=0.5 from teacher | – | 75.0 | – | 80.0 | 5.0 |" in rows
    assert "| fpd_neg |" not in rows  # alpha 0: a ground-truth run, never an FPD row
    build_report([*runs, fpd], out, latency=False)  # the named control is not among the runs reported
    rows = (out / "results.md").read_text().split("## FPD students against their baselines")[1].split("##")[0]
    assert "| fpd_restart | FPD alpha=0.5 from teacher, init fpd | – | 77.5 | – | 80.0 | 2.5 |" in rows


def test_training_names_the_init_checkpoint(tmp_path):
    """A run started from a run's checkpoint is named by that run; one started from shipped weights by the file."""
    r = tmp_path / "runs"
    from_run = make_run(r, "restart", model="hg2_64", pck_flip=50.0, init=str(r / "teacher" / "best.pt"))
    from_file = make_run(r, "restart2", model="hg2_64", pck_flip=50.0, init="src/weights/teacher_hg4_128_lspet.pt")
    labels = {e.label: e.training for e in load_runs([from_run, from_file])}
    assert labels == {"restart": "ground truth, init teacher", "restart2": "ground truth, init teacher_hg4_128_lspet.pt"}


def test_a_run_evaluated_on_several_splits_is_reported_on_test(tmp_path):
    """Training-image evaluations beside the test ones (the train/validation gap) do not displace the test
    figures; two splits without a test one, or two flip evaluations of one split, are refused by name."""
    run = make_run(tmp_path, "twin", model="hg2_64", pck_flip=55.0, pck_noflip=53.0)
    train = json.loads((run / "eval_test.json").read_text())
    train.update(split="1-1000", pck={**train["pck"], "mean": 60.0})
    (run / "eval_train_1-1000.json").write_text(json.dumps(train))
    (entry,) = load_runs([run])
    assert entry.pck_mean(True) == pytest.approx(55.0) and entry.pck_mean(False) == pytest.approx(53.0)
    assert sum("--split 1-1000" in c for c in entry.commands) == 1  # its command is still listed
    (run / "eval_test.json").rename(run / "eval_val.json")
    (run / "eval_test_noflip.json").unlink()
    val = json.loads((run / "eval_val.json").read_text())
    (run / "eval_val.json").write_text(json.dumps({**val, "split": "val"}))
    with pytest.raises(DataError, match="several splits"):
        load_runs([run])
    (run / "eval_val.json").write_text(json.dumps(val))
    (run / "eval_again.json").write_text(json.dumps(val))
    with pytest.raises(DataError, match="two flip evaluations of split 'test'"):
        load_runs([run])


def test_training_words_name_fpd_with_negatives_and_its_targets(tmp_path):
    """An FPD run with negatives reads as FPD (with its warped, flip-averaged targets), not as a ground-truth
    fine-tune; an alpha-0 run with negatives still reads as ground truth only."""
    fpd = make_run(tmp_path, "fpd", model="hg2_64", pck_flip=55.0, mode="distill", alpha=0.5,
                   teacher=str(tmp_path / "teacher" / "best.pt"))
    a0 = make_run(tmp_path, "a0", model="hg2_64", pck_flip=54.0, mode="distill", alpha=0.0,
                  teacher=str(tmp_path / "teacher" / "best.pt"))
    for run, extra in ((fpd, {"teacher_targets": "warped", "teacher_flip": True}), (a0, {})):
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["data"]["augment"]["negative_prob"] = 0.2
        config["distill"].update(extra)
        (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    words = {e.label: e.training for e in load_runs([fpd, a0])}
    assert words["fpd"] == "FPD alpha=0.5 from teacher (warped, flip-averaged), 0.2 of the crops negatives (no person)"
    assert words["a0"] == "ground truth only, 0.2 of the crops negatives (no person)"
