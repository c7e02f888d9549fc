"""Load (issue 8): ``posedistill predict`` over a folder of 1000 images and a video of 1000 frames keeps its peak
memory flat (compared with 100) and reports-and-skips bad images / frames instead of stopping.

Peak RSS is read with ``resource.getrusage(RUSAGE_CHILDREN)`` in a fresh wrapper process per measurement, so one
run's peak never leaks into another's. Tiny model (hg1_32, 64x64 input) and 64x64 synthetic images: seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from posedistill.errors import DataError
from posedistill.inference.predictor import Predictor
from posedistill.inference.pipeline import predict_paths
from posedistill.models import build_model

from helpers import make_checkpoint, model_meta

_WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "sys.stderr.write(r.stderr); "
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "hg1_32.pt"
    model = build_model("hg1_32", num_joints=14)
    return make_checkpoint(path, model, model_meta(model, "hg1_32", 64))


def _frame(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    img = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return cv2.resize(img, (64, 64), interpolation=cv2.INTER_LINEAR)


def _folder(root: Path, n: int, bad: int = 0) -> Path:
    root.mkdir()
    for i in range(n):
        ok, buf = cv2.imencode(".jpg", _frame(i))
        (root / f"im{i:05d}.jpg").write_bytes(buf.tobytes())
    for i in range(bad):  # truncated, garbage, empty
        data = (root / f"im{i:05d}.jpg").read_bytes()
        (root / f"im{i:05d}.jpg").write_bytes([data[: len(data) // 2], b"garbage", b""][i % 3])
    return root


def _video(path: Path, n: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 64))
    assert writer.isOpened()
    for i in range(n):
        writer.write(_frame(i % 50))
    writer.release()
    return path


def _predict_peak(ckpt: Path, source: Path, out: Path) -> tuple[int, str]:
    """Run the CLI in a wrapper process; returns (peak RSS of the CLI process in KiB, its stderr)."""
    cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "posedistill", "predict", str(source),
           "--weights", str(ckpt), "-o", str(out), "--no-progress", "--threads", "1", "--batch-size", "16"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    code, peak = res.stdout.split()
    assert code == "0", res.stderr[-3000:]
    return int(peak), res.stderr


@pytest.mark.slow  # subprocesses measuring peak memory over a folder and a video
def test_folder_and_video_memory_flat_and_bad_items_skipped(ckpt, tmp_path):
    peaks = {}
    small = _folder(tmp_path / "f100", 100, bad=3)
    large = _folder(tmp_path / "f1000", 1000, bad=3)
    for name, folder in (("images_100", small), ("images_1000", large)):
        peaks[name], err = _predict_peak(ckpt, folder, tmp_path / f"{name}.json")
        n = int(name.split("_")[1])
        assert len(json.loads((tmp_path / f"{name}.json").read_text())) == n - 3
        assert err.count("warning:") == 3 and "im00000.jpg" in err and "im00002.jpg" in err
        assert f"predicted {n - 3} images/frames, skipped 3 bad ones" in err
    for n in (100, 1000):
        video = _video(tmp_path / f"v{n}.mp4", n)
        peaks[f"video_{n}"], err = _predict_peak(ckpt, video, tmp_path / f"v{n}.json")
        records = json.loads((tmp_path / f"v{n}.json").read_text())
        assert [r["frame"] for r in records] == list(range(n))
    print("peak RSS KiB:", peaks)
    for kind in ("images", "video"):
        assert peaks[f"{kind}_1000"] <= 1.25 * peaks[f"{kind}_100"] + 20_000, peaks  # + 20 MiB slack


def test_bad_video_frame_is_reported_and_skipped(ckpt, tmp_path, monkeypatch, capsys):
    import posedistill.inference.pipeline as inf

    video = _video(tmp_path / "v.mp4", 6)
    real = inf.iter_frames

    def frames_with_a_bad_one(path):
        for i, frame in enumerate(real(path)):
            yield frame[:, :, 0] if i == 2 else frame  # frame 2 decodes as a single-channel array

    monkeypatch.setattr(inf, "iter_frames", frames_with_a_bad_one)
    skipped: list[str] = []
    records = predict_paths(Predictor(ckpt, locate="none"), [video], progress=False, skipped=skipped)
    assert [r["frame"] for r in records] == [0, 1, 3, 4, 5]
    assert len(skipped) == 1 and "frame 2" in skipped[0]
    assert "warning:" in capsys.readouterr().err


def test_named_bad_file_still_fails_fast(ckpt, tmp_path):
    folder = _folder(tmp_path / "f", 3)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff truncated")
    out = tmp_path / "o.json"
    with pytest.raises(DataError, match="bad.jpg"):
        predict_paths(Predictor(ckpt, locate="none"), [folder, bad], progress=False, output=out)
    assert not out.exists()
