"""tools/ship_weights.py: slim default weights, a manifest whose sha256 verifies, and a generated model card."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from posedistill.models.checkpoint import load_checkpoint
from posedistill.config import ExperimentConfig
from posedistill.inference.network import PoseNetwork
from posedistill.models.pretrained import default_weights
from posedistill.models import build_model
from posedistill.inference.person_score import PersonScorer, sidecar_path
from posedistill.models.pretrained import sha256_file

from helpers import make_checkpoint, model_meta

TOOL = Path(__file__).parents[1] / "tools" / "ship_weights.py"


def _tool():
    spec = importlib.util.spec_from_file_location("ship_weights", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(root: Path, name: str, model: str, mode: str, pck: float) -> Path:
    run = root / name
    run.mkdir(parents=True)
    config = ExperimentConfig().to_dict()
    config["name"], config["model"]["name"], config["data"]["input_size"] = name, model, 64
    config["run"] = {"mode": mode, "teacher": "runs/t/best.pt" if mode == "distill" else None, "init": None,
                     "unlabeled": None}
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    torch.manual_seed(0)
    net = build_model(model)
    opt = torch.optim.Adam(net.parameters())
    make_checkpoint(run / "best.pt", net, model_meta(net, model, 64, sigma=1.5), optimizer=opt.state_dict(), epoch=3,
                    best_val_pck=pck - 1, config=config, history=[{"epoch": 1}])
    for flip, value in ((True, pck), (False, pck - 0.5)):
        ev = {"split": "test", "flip": flip, "pck": {"mean": value, "per_joint": [value] * 14}, "auc": value / 2}
        (run / f"eval_test{'' if flip else '_noflip'}.json").write_text(json.dumps(ev))
    return run


def test_ship_weights_manifest_card_and_predictor(tmp_path, monkeypatch):
    tool = _tool()
    student = _run(tmp_path / "runs", "fpd_hg1_32", "hg1_32", "distill", 30.0)
    base = _run(tmp_path / "runs", "fpd_hg2_32", "hg2_32", "distill", 31.0)
    teacher = _run(tmp_path / "runs", "teacher_hg2_32", "hg2_32", "train", 33.0)
    out, card = tmp_path / "weights", tmp_path / "model_card.md"
    out.mkdir()
    for old in ("fpd_old_lspet.pt", "fpd_old_lspet.onnx", "fpd_old_lspet.pt.person.json"):  # a default of before
        (out / old).write_bytes(b"replaced")
    # the student's localiser scorer (python -m posedistill.inference.scorer_fit) ships beside its checkpoint and its
    # ONNX export, each copy keyed to its file
    scorer = PersonScorer(14, np.zeros(5), np.ones(5), [(np.ones((1, 5)), np.zeros(1))],
                          sha256_file(student / "best.pt"), {"scenes": 3})
    scorer.save(sidecar_path(student / "best.pt"))
    monkeypatch.setattr("sys.argv", ["ship_weights.py", "--student", f"tiny={student}", "--student", f"base={base}",
                                     "--default", "base", "--teacher", str(teacher), "--out", str(out),
                                     "--card", str(card), "--threads", "1"])
    tool.main()
    manifest = json.loads((out / "default.json").read_text())
    assert manifest["format"] == "posedistill-weights" and manifest["default"] == "base"
    tiny = manifest["students"]["tiny"]
    assert tiny["model"] == "hg1_32" and tiny["alpha"] == 0.5 and tiny["test"]["flip"]["pck_mean"] == 30
    assert manifest["students"]["base"]["model"] == "hg2_32"
    assert manifest["teacher"]["model"] == "hg2_32" and manifest["teacher"]["alpha"] is None
    assert "onnx" not in manifest["teacher"]  # the teacher ships as a checkpoint only
    for kwargs in ({"model": "tiny", "backend": "torch"}, {"model": "base", "backend": "torch"}, {"role": "teacher"}):
        ckpt = load_checkpoint(default_weights(out, **kwargs))  # sha256 verified
        assert "optimizer" not in ckpt and "history" not in ckpt and ckpt["provenance"]["test"]
    assert default_weights(out) == out / manifest["students"]["base"]["onnx"]["file"]  # the default, as ONNX
    # the student is smaller than its training checkpoint (no optimiser state); it and its ONNX export predict
    # as the trained checkpoint does
    assert (out / tiny["file"]).stat().st_size < (student / "best.pt").stat().st_size
    x = torch.randn(2, 3, 64, 64).numpy()
    trained = PoseNetwork.load(student / "best.pt").heatmaps(x)
    assert (PoseNetwork.load(out / tiny["file"]).heatmaps(x) == trained).all()
    np.testing.assert_allclose(PoseNetwork.load(out / tiny["onnx"]["file"]).heatmaps(x), trained, atol=1e-4)
    copies = [tiny["person_scorer"]["file"]] + [c["file"] for c in tiny["person_scorer"]["copies"]]
    assert copies == [tiny["file"] + ".person.json", tiny["onnx"]["file"] + ".person.json"]
    assert tiny["person_scorer"]["scenes"] == 3
    for shipped in (out / tiny["file"], out / tiny["onnx"]["file"]):
        assert PersonScorer.load(sidecar_path(shipped)).weights_sha256 == sha256_file(shipped)
    assert "person_scorer" not in manifest["teacher"] and "person_scorer" not in manifest["students"]["base"]
    shipped_files = [e[k] for e in manifest["students"].values() for k in ("file",)] + \
        [e["onnx"]["file"] for e in manifest["students"].values()] + copies + [manifest["teacher"]["file"]]
    assert sorted(p.name for p in out.iterdir()) == sorted(["default.json"] + shipped_files)  # the old ones gone
    text = card.read_text()
    assert "| tiny | `fpd_hg1_32_lspet.pt`, `fpd_hg1_32_lspet.onnx` | hg1_32 |" in text
    assert "| base (default) | `fpd_hg2_32_lspet.pt`, `fpd_hg2_32_lspet.onnx` | hg2_32 |" in text
    assert "| 30.0 | 29.5 | 29.0 |" in text and "| 31.0 | 30.5 | 30.0 |" in text
    assert "| teacher | `teacher_hg2_32_lspet.pt` | hg2_32 |" in text and "| 33.0 | 32.5 | 32.0 |" in text
    assert "Student `tiny`" in text and "Student `base`" in text and "`base`; `--model NAME`" in text
    assert "posedistill distill --out" in text and "alpha 0.5" in text and "Fast Pose Distillation" in text
    assert "100 epochs, batch 16, step learning-rate schedule; the shipped checkpoint is epoch 3" in text
    assert "Input: tiny 64x64; base 64x64; teacher 64x64." in text


def test_ship_weights_refuses_unnamed_or_duplicate_students(tmp_path, monkeypatch, capsys):
    tool = _tool()
    for argv in (["--student", "runs/x"], ["--student", "a=runs/x", "--student", "a=runs/y"],
                 ["--student", "a=runs/x", "--default", "b"]):
        monkeypatch.setattr("sys.argv", ["ship_weights.py", *argv, "--out", str(tmp_path)])
        with pytest.raises(SystemExit) as exc:
            tool.main()
        assert exc.value.code == 2
    assert not (tmp_path / "default.json").exists()
    # a manifest that cannot be read is not shipped over (its finder entry and files would be lost)
    (tmp_path / "default.json").write_text("{not json")
    (tmp_path / "person_finder.onnx").write_bytes(b"x")
    monkeypatch.setattr("sys.argv", ["ship_weights.py", "--student", "a=runs/x", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        tool.main()
    assert exc.value.code == 2 and "cannot be read" in capsys.readouterr().err
    assert (tmp_path / "person_finder.onnx").exists() and (tmp_path / "default.json").read_text() == "{not json"
