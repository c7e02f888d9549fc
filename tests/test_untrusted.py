"""Untrusted checkpoints never execute code (issue 8): a pickle whose ``__reduce__`` would create a marker file is
refused by every entry point, and the marker never appears. Default weights are verified by sha256."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from posedistill.models.checkpoint import load_checkpoint, model_from_checkpoint
from posedistill.errors import CheckpointError
from posedistill.inference.predictor import Predictor
from posedistill.models.pretrained import default_weights, sha256_file
from posedistill.models import build_model
from posedistill.quickstart import embedded_data_dir

from helpers import make_checkpoint, model_meta, write_manifest


class _Payload:
    """Unpickling this calls ``os.system("touch MARKER")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _good(path: Path) -> Path:
    model = build_model("hg1_32", num_joints=14)
    return make_checkpoint(path, model, model_meta(model, "hg1_32", 64))


def _evil_files(tmp: Path, marker: Path) -> list[Path]:
    """The payload in a zip checkpoint (inside an otherwise valid dict), in a legacy torch file and a raw pickle."""
    ckpt = torch.load(_good(tmp / "good.pt"), weights_only=True)
    zip_ckpt = tmp / "evil_zip.pt"
    torch.save({**ckpt, "metrics": _Payload(marker)}, zip_ckpt)
    legacy = tmp / "evil_legacy.pt"
    torch.save({**ckpt, "config": _Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    raw = tmp / "evil_raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(marker)))
    # the payload really works when trusted: proves the test would notice an execution
    pickle.loads(raw.read_bytes())
    assert marker.exists()
    marker.unlink()
    return [zip_ckpt, legacy, raw]


@pytest.fixture()
def evil(tmp_path):
    marker = tmp_path / "PWNED"
    return _evil_files(tmp_path, marker), marker


def test_library_entry_points_refuse_pickle_payloads(evil):
    files, marker = evil
    for path in files:
        for load in (load_checkpoint, model_from_checkpoint, Predictor):
            with pytest.raises(CheckpointError, match="refused to load|not a posedistill checkpoint"):
                load(path)
            assert not marker.exists(), (load, path)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "posedistill", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=240)


@pytest.mark.slow  # one subprocess per command; the library test covers the loaders
def test_cli_entry_points_refuse_pickle_payloads(evil, tmp_path):
    files, marker = evil
    evil_pt = files[0]
    data = embedded_data_dir()
    common = ["--no-progress", "--device", "cpu", "--set", f"data.root={data}", "--set", "data.train=1-8",
              "--set", "data.val=", "--set", "data.input_size=64", "--set", "data.workers=0",
              "--model", "hg1_32", "--epochs", "1", "--batch-size", "4"]
    resume_dir = tmp_path / "run"
    resume_dir.mkdir()
    (resume_dir / "last.pt").write_bytes(evil_pt.read_bytes())
    image = data / "images" / "im00001.jpg"
    commands = {
        "evaluate": ["evaluate", evil_pt, "--data", data, "--split", "1-4", "--workers", "0"],
        "predict": ["predict", image, "--weights", evil_pt],
        "export": ["export", evil_pt, "--onnx", tmp_path / "x.onnx"],
        "distill --teacher": ["distill", "--out", tmp_path / "d", "--teacher", evil_pt, *common],
        "distill --init": ["distill", "--out", tmp_path / "i", "--teacher", _good(tmp_path / "t.pt"), "--init",
                           evil_pt, *common],
        "train --resume": ["train", "--out", resume_dir, "--resume", *common],
    }
    for name, args in commands.items():
        res = _cli(*args, cwd=tmp_path)
        assert res.returncode == 2, (name, res.stderr[-2000:])
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("error:")]
        assert lines and "refused to load" in lines[-1], (name, res.stderr[-2000:])
        assert "Traceback" not in res.stderr, name
        assert not marker.exists(), name
    assert not (tmp_path / "x.onnx").exists()


def _install(folder: Path, source: Path) -> Path:
    folder.mkdir()
    (folder / "student.pt").write_bytes(source.read_bytes())
    write_manifest(folder, {"tiny": "student.pt"})
    return folder


def test_default_weights_refuse_a_changed_replaced_or_escaping_file(tmp_path):
    folder = _install(tmp_path / "w", _good(tmp_path / "good.pt"))
    assert default_weights(folder) == folder / "student.pt"
    # one flipped byte in the middle of the file
    data = bytearray((folder / "student.pt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "student.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match"):
        default_weights(folder)
    # a replaced file (even a valid checkpoint) is refused too
    (folder / "student.pt").write_bytes(_good(tmp_path / "other.pt").read_bytes())
    with pytest.raises(CheckpointError, match="does not match"):
        default_weights(folder)
    # manifest that points outside the folder, or is malformed
    info = json.loads((folder / "default.json").read_text())
    info["students"]["tiny"].update(file="../good.pt", sha256=sha256_file(tmp_path / "good.pt"))
    (folder / "default.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="not found"):
        default_weights(folder)
    (folder / "default.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="malformed"):
        default_weights(folder)


def test_predictor_uses_only_verified_default_weights(tmp_path):
    folder = _install(tmp_path / "w", _good(tmp_path / "good.pt"))
    assert Predictor(weights_dir=folder).network.input_size == 64
    (folder / "student.pt").write_bytes(_good(tmp_path / "other.pt").read_bytes())
    with pytest.raises(CheckpointError, match="does not match"):
        Predictor(weights_dir=folder)
