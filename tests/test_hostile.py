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

from posedistill.models.checkpoint import save_checkpoint
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
    from posedistill.inference.predictor import Predictor
    from posedistill.inference.pipeline import predict_paths

    folder = tmp_path / "imgs"
    folder.mkdir()
    photos = sorted((lspet_mini / "images").glob("*.jpg"))[:3]
    for p in photos:
        (folder / p.name).write_bytes(p.read_bytes())
    predictor = Predictor(ckpt, locate="none", threads=1)
    original = predictor.network.preprocess
    poisoned = cv2.imread(str(photos[1])).shape

    def preprocess(image, box):
        if image.shape == poisoned:
            raise RuntimeError("an unexpected failure deep in a library")
        return original(image, box)

    monkeypatch.setattr(predictor.network, "preprocess", preprocess)
    skipped: list[str] = []
    out = tmp_path / "poses.json"
    records = predict_paths(predictor, [folder], output=out, progress=False, skipped=skipped)
    assert {Path(r["image"]).name for r in records} == {photos[0].name, photos[2].name}
    assert len(skipped) == 1 and photos[1].name in skipped[0] and "unexpected failure" in skipped[0]
    assert len(json.loads(out.read_text())) == 2


# ------------------------------------------------------------------------------ serve: 3-7
@pytest.fixture(scope="module")
def tiny_predictor(ckpt):
    from posedistill.inference.predictor import Predictor

    return Predictor(ckpt, threads=1)


def _poison(predictor, monkeypatch, bad_shape) -> None:
    """The network fails on any batch holding a crop of an image of ``bad_shape`` (a stand-in for whatever a
    hostile upload breaks inside a batch)."""
    preprocess, heatmaps = predictor.network.preprocess, predictor.network.heatmaps

    def marked(image, box):
        crop, matrix = preprocess(image, box)
        return (np.full_like(crop, np.nan) if image.shape == bad_shape else crop), matrix

    def network(batch, **options):
        if np.isnan(batch).any():
            raise RuntimeError("kernel failure on a poisoned crop")
        return heatmaps(batch, **options)

    monkeypatch.setattr(predictor.network, "preprocess", marked)
    monkeypatch.setattr(predictor.network, "heatmaps", network)


def test_one_bad_request_does_not_fail_the_others_in_its_batch(tiny_predictor, photo, monkeypatch):
    from posedistill.serve import Batcher

    good, bad = cv2.imread(str(photo)), np.zeros((33, 33, 3), np.uint8)
    _poison(tiny_predictor, monkeypatch, bad.shape)
    batcher = Batcher(tiny_predictor, max_batch=8, max_wait_ms=500, queue_size=16)
    try:
        futures = [batcher.submit(good, [10, 20, 100, 150]) for _ in range(3)]
        futures.append(batcher.submit(bad, [0, 0, 33, 33], "bad"))
        futures += [batcher.submit(good, [10, 20, 100, 150]) for _ in range(3)]
        errors = [f.exception(timeout=60) for f in futures]
    finally:
        batcher.close()
    assert [e is None for e in errors] == [True] * 3 + [False] + [True] * 3, errors
    assert "poisoned" in str(errors[3])
    assert all(len(f.result().people) == 1 for i, f in enumerate(futures) if i != 3)


def test_every_server_error_is_a_json_one_liner(tiny_predictor, photo, monkeypatch):
    from fastapi.testclient import TestClient

    from posedistill.serve import ServeConfig, create_app

    bad = np.zeros((33, 33, 3), np.uint8)
    _poison(tiny_predictor, monkeypatch, bad.shape)
    ok, png = cv2.imencode(".png", bad)
    app = create_app(tiny_predictor, config=ServeConfig())
    with TestClient(app, raise_server_exceptions=False) as client:
        failed = client.post("/predict?bbox=0,0,33,33", content=png.tobytes(), headers={"Content-Type": "image/png"})
        missing = client.get("/no/such/page")
        good = client.post("/predict?bbox=10,20,100,150", content=photo.read_bytes(),
                           headers={"Content-Type": "image/jpeg"})
    assert failed.status_code == 500 and failed.headers["content-type"] == "application/json", failed.text
    message = failed.json()["error"]
    assert "poisoned" in message and "\n" not in message
    assert missing.status_code == 404 and "error" in missing.json()
    assert good.status_code == 200


def _big_photo(photo: Path, tmp: Path, side: int) -> tuple[Path, float]:
    """The photo scaled up to ``side`` pixels on its long side (a smooth, small JPEG of many pixels)."""
    image = cv2.imread(str(photo))
    scale = side / max(image.shape[:2])
    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    path = tmp / f"big{side}.jpg"
    path.write_bytes(cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    return path, big.shape[1] / image.shape[1]


def test_large_photos_are_decoded_small_and_answered_in_their_own_pixels(photo, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from posedistill.inference.predictor import Predictor
    from posedistill.serve import Batcher, create_app

    big, scale = _big_photo(photo, tmp_path, 6300)
    seen: list[tuple[int, ...]] = []
    submit = Batcher.submit
    monkeypatch.setattr(Batcher, "submit", lambda self, image, *a, **k: (seen.append(image.shape),
                                                                         submit(self, image, *a, **k))[1])
    predictor = Predictor(threads=1)  # the shipped weights: a trained model, so keypoints are comparable
    box = [round(v * scale, 3) for v in (10, 20, 100, 150)]
    with TestClient(create_app(predictor)) as client:
        res = client.post("/predict?bbox=" + ",".join(f"{v:.3f}" for v in box), content=big.read_bytes(),
                          headers={"Content-Type": "image/jpeg"})
    assert res.status_code == 200, res.text
    assert max(seen[0][:2]) <= 2048, seen  # decoded reduced, not 6300 x 6300 (about 120 MB)
    (rec,) = res.json()
    assert rec["bbox"] == pytest.approx(box, abs=1e-6)
    want = predictor(cv2.imread(str(big)), [box]).to_records()[0]["keypoints"]
    err = np.hypot([a["x"] - b["x"] for a, b in zip(rec["keypoints"], want)],
                   [a["y"] - b["y"] for a, b in zip(rec["keypoints"], want)])
    assert np.median(err) < 0.05 * box[3], err  # the same pose, in the original photo's pixels


def test_decoded_pixels_in_flight_are_bounded(tiny_predictor, photo, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from posedistill.serve import ServeConfig, create_app

    big, _ = _big_photo(photo, tmp_path, 1000)  # decodes to 1000 x ~700: 0.7 MP
    gate = threading.Event()
    preprocess = tiny_predictor.network.preprocess
    config = ServeConfig(max_batch=1, max_wait_ms=0, queue_size=8, max_decoded_megapixels=1.5)
    with TestClient(create_app(tiny_predictor, config=config)) as client:
        # the requests' crops wait at the gate (after the app's warm-up, which crops too)
        monkeypatch.setattr(tiny_predictor.network, "preprocess",
                            lambda image, box: (gate.wait(30), preprocess(image, box))[1])
        answers: list = []

        def post():
            answers.append(client.post("/predict?bbox=10,10,100,100", content=big.read_bytes(),
                                       headers={"Content-Type": "image/jpeg"}))

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while sum(a.status_code == 503 for a in answers) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        gate.set()
        for t in threads:
            t.join(60)
        health = client.get("/health").json()
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 200, 503, 503], [a.text for a in answers]
    assert all("megapixels" in a.json()["error"] for a in answers if a.status_code == 503)
    assert health["decoded_megapixels"] == 0  # all given back


def test_absurd_box_is_refused_and_no_json_holds_nan(ckpt, photo, tmp_path, tiny_predictor):
    from fastapi.testclient import TestClient

    from posedistill.io import atomic_write_json
    from posedistill.serve import create_app

    out = tmp_path / "poses.json"
    res = CliRunner().invoke(main, ["predict", str(photo), "--weights", str(ckpt), "--no-progress",
                                    "--bbox", "0,0,1e300,1e300", "-o", str(out)])
    assert "box" in _one_line_error(res) and not out.exists()
    with TestClient(create_app(tiny_predictor)) as client:
        answer = client.post("/predict?bbox=0,0,1e300,1e300", content=photo.read_bytes(),
                             headers={"Content-Type": "image/jpeg"})
    assert answer.status_code == 400 and "box" in answer.json()["error"], answer.text

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))

    atomic_write_json(tmp_path / "m.json", {"pck": float("nan"), "per_joint": [1.0, float("inf")]})
    assert strict((tmp_path / "m.json").read_text()) == {"pck": None, "per_joint": [1.0, None]}


# ------------------------------------------------------------------------------ 5-6. slow clients, log floods
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Uvicorn:
    """A real uvicorn server on 127.0.0.1 in a thread of this process."""

    def __init__(self, uvicorn_config) -> None:
        import uvicorn

        self.port = uvicorn_config.port
        self.server = uvicorn.Server(uvicorn_config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "_Uvicorn":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def connect(self, payload: bytes = b""):
        import socket

        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        if payload:
            s.sendall(payload)
        return s


def _closed_after(sock, start: float) -> tuple[float, bytes]:
    """Seconds from ``start`` until the server closes ``sock`` (and what it sent before that)."""
    got = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return time.monotonic() - start, got
        got += chunk


_STALLED_HEAD = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"
_STALLED_BODY = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                 b"Content-Length: 100000\r\n\r\n" + b"\xff\xd8\xff" + b"\x00" * 997)


def test_slow_clients_are_dropped_and_connections_limited(tiny_predictor):
    from posedistill.serve import ServeConfig, create_app
    from posedistill.serve.server import server_config

    config = ServeConfig(header_timeout_s=1.0, upload_timeout_s=2.0, keep_alive_s=0.5, max_connections=4)
    app = create_app(tiny_predictor, config=config)
    with _Uvicorn(server_config(app, host="127.0.0.1", port=_free_port(), config=config)) as server:
        start = time.monotonic()
        silent, head, body = server.connect(), server.connect(_STALLED_HEAD), server.connect(_STALLED_BODY)
        time.sleep(0.3)  # the body's request is in, then a 4th connection reaches the limit of 4
        crowd = server.connect(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert b" 503 " in crowd.recv(4096).split(b"\r\n")[0]
        for sock in (silent, head):
            seconds, got = _closed_after(sock, start)
            assert 0.9 < seconds < 6 and got == b""
        seconds, got = _closed_after(body, start)
        assert 1.9 < seconds < 6 and b" 408 " in got.split(b"\r\n")[0] and b'"error"' in got, got
        ok = server.connect(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # room again
        assert b" 200 " in ok.recv(4096).split(b"\r\n")[0]
        for sock in (silent, head, body, crowd, ok):
            sock.close()


@pytest.mark.slow
def test_serve_command_drops_stalled_sockets_with_its_defaults():
    """`posedistill serve` as launched: stalled heads closed within the default 10 s, a stalled body answered 408
    within the default 30 s (a subprocess; about 45 s)."""
    import subprocess
    import sys
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "posedistill", "serve", "--port", str(port), "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sockets = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.2)
        server = type("S", (), {"port": port, "connect": _Uvicorn.connect})()
        start = time.monotonic()
        sockets = [server.connect(), server.connect(_STALLED_HEAD), server.connect(_STALLED_BODY)]
        for sock in sockets[:2]:
            seconds, got = _closed_after(sock, start)
            assert seconds < 15 and got == b""
        seconds, got = _closed_after(sockets[2], start)
        assert seconds < 35 and b" 408 " in got.split(b"\r\n")[0]
    finally:
        for sock in sockets:
            sock.close()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def test_disconnects_and_bad_inputs_log_one_line_each(tiny_predictor, caplog):
    import http.client
    import logging

    import uvicorn

    from posedistill.serve import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(tiny_predictor), host="127.0.0.1", port=port, log_level="info",
                            log_config=None)  # records reach caplog
    with caplog.at_level(logging.INFO), _Uvicorn(config) as server:
        for _ in range(5):
            server.connect(_STALLED_BODY).close()  # gone mid-upload
        for body in (b"", b"not an image", b"\x89PNG\r\n\x1a\n"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "image/png"})
            assert conn.getresponse().status == 400
            conn.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and sum("disconnect" in r.getMessage() for r in caplog.records) < 5:
            time.sleep(0.05)
    records = [r for r in caplog.records if r.name.startswith(("uvicorn", "posedistill"))]
    assert not [r for r in records if r.exc_info], [r.getMessage() for r in records if r.exc_info][:1]
    messages = [r.getMessage() for r in records]
    assert all("\n" not in m for m in messages), messages
    assert sum("disconnect" in m for m in messages) == 5, messages
    assert sum(" 400 " in m and "disconnect" not in m for m in messages) == 3, messages


# ------------------------------------------------------------------------------ 8. staging of killed --draw runs
def test_staging_folders_of_killed_draw_runs_are_removed(ckpt, photo, tmp_path):
    import fcntl

    drawn = tmp_path / "drawn"
    killed = [drawn / ".posedistill-draw-k1ll3d", drawn / ".posedistill-draw-0ld0ne"]
    for folder in killed:
        folder.mkdir(parents=True)
        for i in range(5):
            (folder / f"im{i:05d}.jpg").write_bytes(b"half a drawing")
    live = drawn / ".posedistill-draw-4l1ve0"  # a run still drawing: it holds the lock on its folder
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        res = CliRunner().invoke(main, ["predict", str(photo), "--weights", str(ckpt), "--locate", "none",
                                        "--no-progress", "--draw", str(drawn)])
        assert res.exit_code == 0, res.output
        assert sorted(p.name for p in drawn.iterdir()) == [live.name, photo.name]
    finally:
        os.close(fd)


@pytest.mark.slow
def test_kill9_of_a_draw_run_leaves_nothing_after_the_next_run(ckpt, photo, tmp_path):
    """SIGKILL a real `predict --draw` mid-run, then run again: the killed run's staging folder is gone."""
    import signal
    import subprocess
    import sys

    folder, drawn = tmp_path / "many", tmp_path / "drawn"
    folder.mkdir()
    for i in range(400):
        (folder / f"im{i:04d}.jpg").write_bytes(photo.read_bytes())
    proc = subprocess.Popen([sys.executable, "-m", "posedistill", "predict", str(folder), "--weights", str(ckpt),
                             "--locate", "none", "--no-progress", "--draw", str(drawn), "-o", str(tmp_path / "p.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(len(list(d.iterdir())) >= 5 for d in drawn.glob(".posedistill-*")):
        assert proc.poll() is None, "finished before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert list(drawn.glob(".posedistill-*")), "nothing staged when killed"
    res = CliRunner().invoke(main, ["predict", str(photo), "--weights", str(ckpt), "--locate", "none",
                                    "--no-progress", "--draw", str(drawn)])
    assert res.exit_code == 0, res.output
    assert [p.name for p in drawn.iterdir()] == [photo.name]


# ------------------------------------------------------------------------------ 10. refusing a hostile checkpoint
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("legacy", [False, True])
def test_refusal_of_a_hostile_checkpoint_gives_no_advice_to_load_it(ckpt, photo, tmp_path, legacy):
    from posedistill.models.checkpoint import load_checkpoint
    from posedistill.errors import CheckpointError

    marker, evil = tmp_path / "PWNED", tmp_path / "evil.pt"
    torch.save({**torch.load(ckpt, weights_only=True), "metrics": _Payload(marker)}, evil,
               _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(evil)
    res = CliRunner().invoke(main, ["predict", str(photo), "--weights", str(evil), "--no-progress"])
    for message in (str(refused.value), _one_line_error(res)):
        assert "not a plain-weights checkpoint" in message and "will not be loaded" in message, message
        assert "weights_only" not in message and "can still be loaded" not in message, message
    assert not marker.exists()


# ------------------------------------------------------------------------------ 9. resume trusts its own run
@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A tiny run (hg1_32 at 64, 24 images, no validation) stopped after its first of two epochs, and its config
    as a YAML file."""
    import yaml
    from helpers import tiny_cfg

    from posedistill.training import Trainer

    root = tmp_path_factory.mktemp("resume")
    cfg = tiny_cfg(data__val="", train__epochs=2)
    Trainer(cfg, root / "run", progress=False).fit(stop_after=1)
    (root / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    return root / "run", root / "config.yaml"


def _copy_run(run: Path, tmp: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, tmp / "run"))


def _train(*args: str):
    return CliRunner().invoke(main, ["train", "--no-progress", *args])


def test_resume_without_config_reads_the_runs_own_config(one_epoch_run, tmp_path):
    from posedistill.models.checkpoint import load_checkpoint

    run = _copy_run(one_epoch_run[0], tmp_path)
    res = _train("--out", str(run), "--resume")
    assert res.exit_code == 0, res.output
    assert load_checkpoint(run / "last.pt")["epoch"] == 2 and "done: 2 epochs" in res.output


def test_resume_refuses_a_changed_model_or_input_size(one_epoch_run, tmp_path):
    run, config = _copy_run(one_epoch_run[0], tmp_path), one_epoch_run[1]
    before = (run / "last.pt").read_bytes()
    for change in ("data.input_size=128", "model.name=hg2_32"):
        res = _train("--config", str(config), "--out", str(run), "--resume", "--set", change)
        assert change.split("=")[0].split(".")[1].replace("_", " ").split()[0] in _one_line_error(res)
    assert (run / "last.pt").read_bytes() == before


def test_resume_refuses_an_edited_run_config_and_leaves_it_as_it_is(one_epoch_run, tmp_path):
    import yaml

    run, config = _copy_run(one_epoch_run[0], tmp_path), one_epoch_run[1]
    edited = yaml.safe_load((run / "config.yaml").read_text())
    edited["model"]["name"] = "hg2_32"
    (run / "config.yaml").write_text(yaml.safe_dump(edited))
    text = (run / "config.yaml").read_text()
    with_config = _train("--config", str(config), "--out", str(run), "--resume")  # the original settings
    assert "config.yaml" in _one_line_error(with_config) and (run / "config.yaml").read_text() == text
    without = _train("--out", str(run), "--resume")  # the edited config: not the checkpoint's model
    assert "hg2_32" in _one_line_error(without) and (run / "config.yaml").read_text() == text


def test_truncated_last_pt_falls_back_to_the_snapshot_with_a_notice(one_epoch_run, tmp_path):
    from posedistill.models.checkpoint import load_checkpoint

    run, config = _copy_run(one_epoch_run[0], tmp_path), one_epoch_run[1]
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 2])
    res = _train("--config", str(config), "--out", str(run), "--resume")
    assert res.exit_code == 0, res.output
    assert "snapshot.pt" in res.output and "last.pt" in res.output
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


def test_serve_option_defaults_are_those_of_serveconfig():
    from posedistill.cli.serve_cmd import _LIMITS
    from posedistill.serve import ServeConfig

    assert [(field, default) for _, field, _, default, _ in _LIMITS] == [
        (field, getattr(ServeConfig(), field)) for _, field, _, _, _ in _LIMITS]
