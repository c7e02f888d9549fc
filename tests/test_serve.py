"""Issue 14: `posedistill serve`'s API: predictions, batching, a bounded queue, and bad input answered with a
one-line 4xx while the server keeps serving (FastAPI TestClient, in process; the shipped weights)."""

from __future__ import annotations

import json
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from posedistill.inference.predictor import Predictor
from posedistill.inference.person_score import sidecar_path
from posedistill.serve import Batcher, ServeConfig, ServerBusy, create_app
from posedistill.models.pretrained import DEFAULT_WEIGHTS_DIR


@pytest.fixture(scope="module")
def predictor():
    return Predictor(threads=1)


@pytest.fixture(scope="module")
def client(predictor):
    app = create_app(predictor, config=ServeConfig(max_upload_bytes=200_000, max_pixels=4_000_000))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def photo(lspet_mini) -> Path:
    return sorted((lspet_mini / "images").glob("*.jpg"))[0]


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _jpeg_declaring(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\x00" * 32 + b"\xff\xd9"


def test_health_skeleton_and_page(client):
    health = client.get("/health").json()
    manifest = json.loads((DEFAULT_WEIGHTS_DIR / "default.json").read_text())  # what the shipped weights declare
    shipped = manifest["students"][manifest["default"]]
    assert health["status"] == "ok" and health["joint_set"] == "lsp" and health["input_size"] == shipped["input_size"]
    # the default student runs as its ONNX export, with the scorer shipped beside it
    assert health["person_scorer"] is True and sidecar_path(DEFAULT_WEIGHTS_DIR / shipped["onnx"]["file"]).is_file()
    # a request without a box is located by the shipped person finder
    assert health["localisation"] == "finder" and health["person_finder"] == manifest["finder"]["onnx"]["file"]
    sk = client.get("/skeleton").json()
    assert len(sk["names"]) == 14 and len(sk["limbs"]) == len(sk["limb_sides"])
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text and "/predict" in page.text


def test_predict_body_and_multipart_give_predict_records(client, photo, predictor):
    data = photo.read_bytes()
    raw = client.post("/predict?bbox=10,20,100,150", content=data, headers={"Content-Type": "image/jpeg"})
    assert raw.status_code == 200, raw.text
    (rec,) = raw.json()
    assert rec["image"] == "upload" and rec["bbox"] == [10.0, 20.0, 100.0, 150.0]
    assert [k["name"] for k in rec["keypoints"]] == list(predictor.joints.names)
    assert float(raw.headers["X-Model-Time-Ms"]) > 0 and int(raw.headers["X-Batch-Size"]) >= 1
    import cv2
    want = predictor(cv2.imread(str(photo)), [[10, 20, 100, 150]]).to_records()[0]["keypoints"]
    assert [k["x"] for k in rec["keypoints"]] == pytest.approx([k["x"] for k in want], abs=1e-3)
    multi = client.post("/predict", files={"image": (photo.name, data, "image/jpeg")})
    assert multi.status_code == 200, multi.text
    (auto,) = multi.json()
    assert auto["image"] == photo.name and len(auto["keypoints"]) == 14
    multi_box = client.post("/predict", files={"image": (photo.name, data, "image/jpeg")},
                            data={"bbox": "10,20,100,150"})
    assert multi_box.json()[0]["bbox"] == [10.0, 20.0, 100.0, 150.0]


@pytest.mark.parametrize("body, ctype, status, words", [
    (b"", "image/jpeg", 400, "empty"),
    (b"hello, I am not an image at all", "image/png", 400, "not a recognised image"),
    (None, "image/jpeg", 400, "truncated"),  # a real JPEG cut in half
    (_png_declaring(50_000, 50_000), "image/png", 400, "50000 x 50000"),
    (_jpeg_declaring(50_000, 50_000), "image/jpeg", 400, "50000 x 50000"),
    (b"GIF89a....", "text/plain", 415, "Content-Type"),
    (b"\xff\xd8\xff" + b"\x00" * 300_000 + b"\xff\xd9", "image/jpeg", 413, "larger than the limit"),
])
def test_bad_input_gets_a_one_line_4xx_and_the_server_keeps_serving(client, photo, body, ctype, status, words):
    if body is None:
        data = photo.read_bytes()
        body = data[: len(data) // 2]
    res = client.post("/predict", content=body, headers={"Content-Type": ctype})
    assert res.status_code == status, res.text
    message = res.json()["error"]
    assert words in message and "\n" not in message and "Traceback" not in message
    ok = client.post("/predict", content=photo.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert ok.status_code == 200


def test_bad_box_and_bad_multipart_are_400(client, photo):
    data = photo.read_bytes()
    outside = client.post("/predict?bbox=5000,5000,10,10", content=data, headers={"Content-Type": "image/jpeg"})
    malformed = client.post("/predict?bbox=1,2,3", content=data, headers={"Content-Type": "image/jpeg"})
    no_field = client.post("/predict", files={"photo": ("a.jpg", data, "image/jpeg")})
    assert (outside.status_code, malformed.status_code, no_field.status_code) == (400, 400, 400)
    assert "outside" in outside.json()["error"] and "'image'" in no_field.json()["error"]


def test_concurrent_requests_are_batched(predictor, photo):
    app = create_app(predictor, config=ServeConfig(max_batch=8, max_wait_ms=200))
    data = photo.read_bytes()
    with TestClient(app) as c:
        sizes: list[int] = []

        def call():
            r = c.post("/predict?bbox=10,20,100,150", content=data, headers={"Content-Type": "image/jpeg"})
            assert r.status_code == 200
            sizes.append(int(r.headers["X-Batch-Size"]))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert max(sizes) > 1 and c.get("/health").json()["served"] == 6


def test_full_queue_refuses_at_once(predictor):
    gate = threading.Event()
    batcher = Batcher(predictor, max_batch=1, max_wait_ms=0, queue_size=2)
    original = batcher.predictor.prepare

    def slow(image, boxes=None, **kw):
        gate.wait(10)
        return original(image, boxes, **kw)

    batcher.predictor = type("Slow", (), {"prepare": staticmethod(slow), "__getattr__":
                                          lambda self, n: getattr(predictor, n)})()
    image = np.zeros((64, 64, 3), np.uint8)
    futures = [batcher.submit(image, [0, 0, 64, 64])]  # taken by the worker, which then blocks
    for _ in range(50):
        if batcher.queued() == 0:
            break
        threading.Event().wait(0.01)
    futures += [batcher.submit(image, [0, 0, 64, 64]) for _ in range(2)]
    with pytest.raises(ServerBusy, match="busy"):
        batcher.submit(image, [0, 0, 64, 64])
    gate.set()
    assert all(len(f.result(timeout=20).people) == 1 for f in futures)
    batcher.close()


def _xy(records):
    return [(k["x"], k["y"]) for k in records[0]["keypoints"]]


def test_flip_parameter_chooses_flip_test_per_request(client, photo, predictor):
    import cv2
    data, box = photo.read_bytes(), [10, 20, 100, 150]
    image = cv2.imread(str(photo))
    answers = {}
    for flip in ("1", "0"):
        r = client.post(f"/predict?bbox=10,20,100,150&flip={flip}", content=data,
                        headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 200 and r.headers["X-Flip"] == flip, r.text
        want = predictor(image, [box], flip=flip == "1").to_records(image="upload")
        assert np.allclose(_xy(r.json()), _xy(want), atol=1e-3)
        answers[flip] = _xy(r.json())
    assert not np.allclose(answers["1"], answers["0"], atol=1e-3)  # flip test moves the joints
    default = client.post("/predict?bbox=10,20,100,150", content=data, headers={"Content-Type": "image/jpeg"})
    assert default.headers["X-Flip"] == "0" and client.get("/health").json()["flip"] is False  # the server's default
    multi = client.post("/predict", files={"image": (photo.name, data, "image/jpeg")},
                        data={"bbox": "10,20,100,150", "flip": "1"})
    assert multi.headers["X-Flip"] == "1" and np.allclose(_xy(multi.json()), answers["1"], atol=1e-3)
    bad = client.post("/predict?flip=maybe", content=data, headers={"Content-Type": "image/jpeg"})
    assert bad.status_code == 400 and "flip must be 1 or 0" in bad.json()["error"]


def test_server_flip_default_is_the_predictors(predictor, photo):
    """`serve --flip` builds its Predictor with flip=True: requests without a flip parameter get flip test."""
    flipping = Predictor.from_network(predictor.network, flip=True)
    data = photo.read_bytes()
    with TestClient(create_app(flipping)) as c:
        assert c.get("/health").json()["flip"] is True
        on = c.post("/predict?bbox=10,20,100,150", content=data, headers={"Content-Type": "image/jpeg"})
        off = c.post("/predict?bbox=10,20,100,150&flip=0", content=data, headers={"Content-Type": "image/jpeg"})
    assert (on.headers["X-Flip"], off.headers["X-Flip"]) == ("1", "0")
    assert not np.allclose(_xy(on.json()), _xy(off.json()), atol=1e-3)


def test_batcher_runs_flipped_and_plain_requests_apart(predictor, photo):
    import cv2
    image, box = cv2.imread(str(photo)), [10.0, 20.0, 100.0, 150.0]
    batcher = Batcher(predictor, max_batch=8, max_wait_ms=300, queue_size=8)
    try:
        flips = [True, False, True, False]
        futures = [batcher.submit(image, box, flip=f) for f in flips]
        results = [f.result(timeout=60) for f in futures]
    finally:
        batcher.close()
    assert [r.batch for r in results] == [2, 2, 2, 2] and batcher.batches == 2  # one batch per flip setting
    for flip, result in zip(flips, results):
        want = predictor(image, [box], flip=flip)
        assert np.allclose(result.people.keypoints, want.keypoints, atol=1e-3)


def _server_timing(header: str) -> dict[str, float]:
    out = {}
    for entry in header.split(","):
        name, dur = entry.strip().split(";")
        assert dur.startswith("dur=")
        out[name] = float(dur[4:])
    return out


def test_server_timing_gives_the_stages_of_the_request(client, photo):
    """Issue 27, section 4: every answer says where its time went (the page shows it): the whole request in the
    server, and the network apart from the person search."""
    data = photo.read_bytes()
    boxed = client.post("/predict?bbox=10,20,100,150", content=data, headers={"Content-Type": "image/jpeg"})
    found = client.post("/predict", content=data, headers={"Content-Type": "image/jpeg"})
    for answer, searched in ((boxed, False), (found, True)):
        assert answer.status_code == 200, answer.text
        t = _server_timing(answer.headers["Server-Timing"])
        assert list(t) == ["upload", "decode", "queue", "find", "crop", "network", "heatmaps", "total"]
        assert min(t.values()) >= 0 and t["decode"] > 0
        assert (t["find"] > 0) == searched and (t["network"] > 0) != searched  # the search's last pass is the pose
        assert sum(v for k, v in t.items() if k != "total") <= t["total"] + 0.05  # one request: stages in turn
        model = float(answer.headers["X-Model-Time-Ms"])  # Predictor.estimate: the network (and the search)
        assert t["find"] + t["network"] <= model + 0.05 <= t["total"] + 0.1
