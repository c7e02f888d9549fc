"""Issue 29: hostile but fair inputs. Each test holds one failure a probe found (docs/reliability.md, section 7):
outputs written onto device nodes, FIFOs and symlinks; images with a side of 32,767 pixels or more; a bad request
failing its batch; memory bounded by decoded pixels; slow clients; log floods; absurd boxes and NaN in JSON;
stale staging folders; resume trusting the wrong config or a truncated checkpoint; a refusal that advised the
attack."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from posedistill.checkpoint import save_checkpoint
from posedistill.cli import main
from posedistill.models import build_model
from posedistill.quickstart import embedded_data_dir


def _tiny_ckpt(path: Path, input_size: int = 64) -> Path:
    torch.manual_seed(0)
    model = build_model("hg1_32", num_joints=14).eval()
    save_checkpoint(path, {"arch": {"name": "hg1_32", "num_joints": 14}, "joint_set": "lsp",
                           "input_size": input_size, "sigma": 2.0, "model": model.state_dict()})
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return _tiny_ckpt(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def photo(lspet_mini) -> Path:
    return sorted((lspet_mini / "images").glob("*.jpg"))[0]


def _one_line_error(result) -> str:
    """The CLI's error: exit 2, one ``error:`` line on stderr, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


# ------------------------------------------------------------------------------ 1. special output targets
class _Target:
    """An output path that is not a plain file: a FIFO (with a reader draining it), a symlink to a file in
    another folder, or a character device node equivalent to /dev/null (made here, never the real one)."""

    def __init__(self, folder: Path, kind: str, name: str) -> None:
        self.kind, self.path, self.chunks = kind, folder / name, []
        if kind == "symlink":
            self.real = folder / "elsewhere" / name
            self.real.parent.mkdir()
            self.real.write_bytes(b"old content")
            os.symlink(self.real, self.path)
        elif kind == "fifo":
            os.mkfifo(self.path)
            # opened non-blocking first, so a writer's open() finds a reader; a thread drains it
            self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            self.thread = threading.Thread(target=self._drain, daemon=True)
            self.thread.start()
        else:
            try:
                os.mknod(self.path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
            except (PermissionError, OSError) as exc:
                pytest.skip(f"cannot make a device node here ({exc}); needs root")
        self.mode = os.lstat(self.path).st_mode

    def _drain(self) -> None:
        writer_seen, deadline = False, time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:  # a writer holds it open, nothing to read yet
                writer_seen = True
                time.sleep(0.002)
                continue
            if chunk:
                self.chunks.append(chunk)
                writer_seen = True
            elif writer_seen:
                break  # the writer closed it
            else:
                time.sleep(0.005)  # no writer yet
        os.close(self.fd)

    def received(self) -> bytes:
        """What reached the target (FIFO: what its reader got; symlink: the linked file; device: nothing)."""
        if self.kind == "fifo":
            self.thread.join(20)
            return b"".join(self.chunks)
        if self.kind == "symlink":
            return self.real.read_bytes()
        return b""

    def check_kept(self) -> None:
        """The path is still what it was: the writer wrote through it, it did not rename a file over it."""
        now = os.lstat(self.path).st_mode
        assert stat.S_IFMT(now) == stat.S_IFMT(self.mode), f"{self.kind} was replaced by mode {oct(now)}"
        leftovers = [p.name for p in self.path.parent.iterdir() if p.name.startswith(".")]
        assert not leftovers, leftovers


def _write_predict(target: Path, ckpt: Path, photo: Path, tmp: Path) -> None:
    res = CliRunner().invoke(main, ["predict", str(photo), "--weights", str(ckpt), "--locate", "none",
                                    "--no-progress", "-o", str(target)])
    assert res.exit_code == 0, res.output


def _write_evaluate(target: Path, ckpt: Path, photo: Path, tmp: Path) -> None:
    res = CliRunner().invoke(main, ["evaluate", str(ckpt), "--data", str(embedded_data_dir()), "--split", "501-504",
                                    "--workers", "0", "--no-flip", "--json", str(target)])
    assert res.exit_code == 0, res.output


def _write_export(target: Path, ckpt: Path, photo: Path, tmp: Path) -> None:
    res = CliRunner().invoke(main, ["export", str(ckpt), "--onnx", str(target)])
    assert res.exit_code == 0, res.output


def _write_report(target: Path, ckpt: Path, photo: Path, tmp: Path) -> None:
    import yaml

    from posedistill.config import ExperimentConfig

    run = tmp / "runs" / "student"
    run.mkdir(parents=True)
    config = ExperimentConfig().to_dict()
    config["model"]["name"], config["data"]["input_size"] = "hg1_32", 64
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "metrics.json").write_text(json.dumps({"model": "hg1_32", "best_val_pck": 50.0, "history": []}))
    (run / "cost.json").write_text(json.dumps({"params": 100_000, "gmacs": 0.1, "latency_ms": 1.0}))
    (run / "eval_test.json").write_text(json.dumps({
        "checkpoint": "best.pt", "data": "d", "dataset": "lspet", "split": "test", "flip": True,
        "joint_names": [f"j{i}" for i in range(14)], "threshold": 0.2, "num_people": 10,
        "pck": {"mean": 50.0, "per_joint": [50.0] * 14, "count": [10] * 14}, "auc": 25.0}))
    res = CliRunner().invoke(main, ["report", str(run), "--out", str(target.parent)])
    assert res.exit_code == 0, res.output


def _write_checkpoint(target: Path, ckpt: Path, photo: Path, tmp: Path) -> None:
    _tiny_ckpt(target)


_WRITERS = {  # writer, the output's file name (in the folder it writes), how to read what it wrote
    "predict -o": (_write_predict, "poses.json", json.loads),
    "evaluate --json": (_write_evaluate, "eval.json", json.loads),
    "export --onnx": (_write_export, "model.onnx", lambda b: __import__("onnx").load_from_string(b)),
    "report": (_write_report, "results.json", json.loads),
    "checkpoint": (_write_checkpoint, "last.pt", lambda b: torch.load(__import__("io").BytesIO(b),
                                                                      weights_only=True)),
}


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
@pytest.mark.parametrize("writer", list(_WRITERS))
def test_writers_write_through_fifos_devices_and_symlinks(writer, kind, ckpt, photo, tmp_path):
    write, name, parse = _WRITERS[writer]
    out = tmp_path / "out"
    out.mkdir()
    target = _Target(out, kind, name)
    write(target.path, ckpt, photo, tmp_path)
    target.check_kept()
    got = target.received()
    if kind != "device":
        assert parse(got)  # the whole output reached the FIFO's reader / the symlink's target


def test_a_directory_or_socket_as_output_is_a_one_line_error(ckpt, photo, tmp_path):
    import socket

    from posedistill.errors import PosedistillError
    from posedistill.io import atomic_write_text

    sock_path = tmp_path / "s.json"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        with pytest.raises(PosedistillError, match="socket"):
            atomic_write_text(sock_path, "x")
    assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)


# ------------------------------------------------------------------------------ 2. a side of 32,767 px or more
def _huge_side_images(folder: Path) -> list[Path]:
    """A 50000x1 PNG, a 33000x20 JPEG and a 20x33000 PNG (width x height): OpenCV's warpAffine refuses sides of
    32,767 pixels or more, far under the 100-megapixel limit."""
    rng = np.random.default_rng(0)
    out = []
    for name, (w, h) in (("wide.png", (50_000, 1)), ("band.jpg", (33_000, 20)), ("tall.png", (20, 33_000))):
        ok, buf = cv2.imencode(Path(name).suffix, rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        assert ok
        (folder / name).write_bytes(buf.tobytes())
        out.append(folder / name)
    return out


@pytest.mark.parametrize("where", [["--locate", "none"], ["--bbox", "5,0,10,1"], []])
def test_images_with_a_side_over_32767_pixels_are_predicted(where, ckpt, photo, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(photo.read_bytes())
    huge = _huge_side_images(folder)
    out = tmp_path / "poses.json"
    res = CliRunner().invoke(main, ["predict", str(folder), "--weights", str(ckpt), "--no-progress", *where,
                                    "-o", str(out)])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    records = json.loads(out.read_text())
    assert {Path(r["image"]).name for r in records} == {"good.jpg", *(p.name for p in huge)}, res.output
    assert all(np.isfinite([k["x"] for r in records for k in r["keypoints"]]))
    # named one by one (not in a folder) too
    res = CliRunner().invoke(main, ["predict", str(huge[2]), "--weights", str(ckpt), "--no-progress", *where])
    assert res.exit_code == 0, res.output


def test_crop_of_a_huge_image_matches_the_crop_of_its_region():
    """crop_person on a 40000-pixel-wide image gives the crop it gives on the part of the image the box covers."""
    from posedistill.data.transforms import crop_person

    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (60, 40_000, 3), dtype=np.uint8)
    centre, side = np.array([20_010.0, 30.0]), 50.0
    crop, m = crop_person(image, centre, side, 10.0, 64)
    part = image[:, 19_900:20_100]
    want, m_part = crop_person(part, centre - [19_900, 0], side, 10.0, 64)
    assert np.abs(crop.astype(int) - want.astype(int)).max() <= 1
    assert np.allclose(m[:, :2], m_part[:, :2]) and np.allclose(m @ [19_900, 0, 1], m_part @ [0, 0, 1])


def test_any_exception_on_one_file_of_a_folder_keeps_the_others(ckpt, lspet_mini, tmp_path, monkeypatch):
    from posedistill.inference import Predictor
    from posedistill.pipeline import predict_paths

    folder = tmp_path / "imgs"
    folder.mkdir()
    photos = sorted((lspet_mini / "images").glob("*.jpg"))[:3]
    for p in photos:
        (folder / p.name).write_bytes(p.read_bytes())
    predictor = Predictor(ckpt, threads=1)
    original = predictor.preprocess
    poisoned = cv2.imread(str(photos[1])).shape

    def preprocess(image, box):
        if image.shape == poisoned:
            raise RuntimeError("an unexpected failure deep in a library")
        return original(image, box)

    monkeypatch.setattr(predictor, "preprocess", preprocess)
    skipped: list[str] = []
    out = tmp_path / "poses.json"
    records = predict_paths(predictor, [folder], output=out, progress=False, skipped=skipped)
    assert {Path(r["image"]).name for r in records} == {photos[0].name, photos[2].name}
    assert len(skipped) == 1 and photos[1].name in skipped[0] and "unexpected failure" in skipped[0]
    assert len(json.loads(out.read_text())) == 2
