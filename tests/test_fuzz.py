"""Fuzzing every reader of user files (issue 8): truncated and bit-flipped images, joints.mat, annotation JSON
(MPII / COCO / posedistill json), YAML configs, ONNX models and checkpoints.

A reader either returns a well-formed result or raises a documented :class:`PosedistillError` subclass; any other
exception (KeyError, ValueError from numpy, cv2.error, zipfile errors, onnxruntime errors...) fails the test.
Each test is bounded (``max_examples`` and a per-example ``deadline`` of 10 s, loose enough for a 2-core CPU shared
with training runs; a hung or pathological input still fails it).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from posedistill.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from posedistill.config import load_config
from posedistill.data.images import load_image
from posedistill.data.readers import read_coco, read_jsonfile, read_lspet, read_mpii
from posedistill.errors import PosedistillError
from posedistill.models import build_model

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MINI = FIXTURES / "lspet_mini"

FUZZ = settings(max_examples=40, deadline=10000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _mutate(data: bytes, draw_cut: int, flips: list[tuple[int, int]]) -> bytes:
    """Truncate ``data`` to ``draw_cut`` bytes (if smaller) and xor bytes at the given positions."""
    out = bytearray(data[:draw_cut] if draw_cut < len(data) else data)
    for pos, mask in flips:
        if out:
            out[pos % len(out)] ^= mask or 1
    return bytes(out)


def mutations(data: bytes):
    """Truncations, bit flips, or both, of ``data``."""
    n = len(data)
    # positions spread over the whole file (hypothesis alone favours small integers, i.e. the header)
    pos = st.one_of(st.integers(0, n), st.integers(0, 2**32).map(lambda v: v % max(n, 1)))
    flips = st.lists(st.tuples(pos, st.integers(1, 255)), min_size=1, max_size=6)
    return st.one_of(
        st.builds(_mutate, st.just(data), st.integers(0, n), st.just([])),  # truncated
        st.builds(_mutate, st.just(data), st.just(n), flips),  # bit-flipped, full length
        st.builds(_mutate, st.just(data), st.integers(0, n), flips),  # both
    )


def _write(tmp: Path, name: str, data: bytes) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------------------ images
JPEG = (MINI / "images" / "im00001.jpg").read_bytes()


def _png() -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.imdecode(np.frombuffer(JPEG, np.uint8), cv2.IMREAD_COLOR)[:40, :40])
    assert ok
    return buf.tobytes()


PNG = _png()


@FUZZ
@given(data=st.one_of(mutations(JPEG), mutations(PNG), st.binary(max_size=64)))
def test_fuzz_images(tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("img"), "x.jpg", data)
    try:
        image = load_image(path)
    except PosedistillError as exc:
        assert str(path) in str(exc)
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0


# ------------------------------------------------------------------------------------------------ joints.mat
MAT = (MINI / "joints.mat").read_bytes()


def _check_records(records, n_max=None):
    for r in records:
        assert r.joints.shape[1] == 2 and np.isfinite(r.center).all() and r.scale > 0


@FUZZ
@given(data=mutations(MAT))
def test_fuzz_joints_mat_bytes(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("mat")
    _write(root, "joints.mat", data)
    try:
        _check_records(read_lspet(root))
    except PosedistillError:
        pass


@FUZZ
@given(arr=st.one_of(
    st.builds(lambda s, v: np.full(s, v), st.lists(st.integers(0, 16), min_size=0, max_size=4).map(tuple),
              st.sampled_from([0.0, 1.0, -1.0, np.nan, np.inf, 1e308])),
    st.builds(lambda n, seed: np.random.default_rng(seed).normal(50, 30, (14, 3, n)), st.integers(0, 3),
              st.integers(0, 99)),
    st.just(np.array(["text"])), st.just(np.zeros((0,)))))
def test_fuzz_joints_mat_values(tmp_path_factory, arr):
    import scipy.io

    root = tmp_path_factory.mktemp("matv")
    scipy.io.savemat(root / "joints.mat", {"joints": arr})
    for skip in (False, True):
        try:
            _check_records(read_lspet(root, skip_bad=skip))
        except PosedistillError:
            pass


# ------------------------------------------------------------------------------------------------ JSON
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["image", "joints", "joints_vis", "center", "scale", "head_box", "keypoints", "bbox",
                         "people", "annotations", "images", "categories", "id", "image_id", "file_name",
                         "category_id", "iscrowd", "joint_set", "norm", "joint_self", "objpos",
                         "scale_provided", "img_paths", "area", "x"]) | st.text(max_size=4),
        children, max_size=6),
    max_leaves=25)

MPII_OK = [{"image": "a.jpg", "joints": [[10.0 + i, 20.0 + i] for i in range(16)], "joints_vis": [1] * 16,
            "center": [50, 60], "scale": 1.2, "head_box": [1, 2, 30, 40]}]
COCO_OK = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [1, 2, 30, 40],
                            "area": 1200, "keypoints": [10, 10, 2] * 17, "num_keypoints": 17}],
           "categories": [{"id": 1, "name": "person"}]}
OURS_OK = {"joint_set": "lsp", "people": [{"image": "a.jpg", "keypoints": [[5.0 + i, 6.0 + i, 1] for i in range(14)],
                                           "bbox": [1, 2, 30, 40]}]}
READERS = {"mpii": read_mpii, "coco": read_coco, "json": read_jsonfile}
VALID = {"mpii": MPII_OK, "coco": COCO_OK, "json": OURS_OK}


def _read_json(tmp: Path, kind: str, data: bytes) -> None:
    path = _write(tmp, "ann.json", data)
    for skip in (False, True):
        try:
            _check_records(READERS[kind](path, skip_bad=skip))
        except PosedistillError as exc:
            assert str(path) in str(exc) or "split" in str(exc)


@FUZZ
@given(kind=st.sampled_from(sorted(READERS)), data=st.data())
def test_fuzz_annotation_json_bytes(tmp_path_factory, kind, data):
    raw = json.dumps(VALID[kind]).encode()
    _read_json(tmp_path_factory.mktemp("js"), kind, data.draw(mutations(raw)))


def _replace_somewhere(doc, value, path):
    """Put ``value`` at the place in ``doc`` chosen by the list of ints ``path``."""
    if not path or not isinstance(doc, (dict, list)) or not doc:
        return value
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    k = keys[path[0] % len(keys)]
    doc = json.loads(json.dumps(doc))
    doc[k] = _replace_somewhere(doc[k], value, path[1:])
    return doc


@FUZZ
@given(kind=st.sampled_from(sorted(READERS)), value=json_values, where=st.lists(st.integers(0, 40), max_size=5))
def test_fuzz_annotation_json_structure(tmp_path_factory, kind, value, where):
    doc = _replace_somewhere(VALID[kind], value, where)
    _read_json(tmp_path_factory.mktemp("jss"), kind, json.dumps(doc, allow_nan=True).encode())


# ------------------------------------------------------------------------------------------------ YAML configs
CONFIG = (Path(__file__).resolve().parents[1] / "configs" / "experiments" / "cpu").glob("*.yaml")
YAML_OK = (b"seed: 3\nmodel:\n  name: hg1_32\ndata:\n  dataset: lspet\n  input_size: 64\n  train: 1-24\n"
           b"optim:\n  lr: 0.001\ntrain:\n  epochs: 2\n  batch_size: 8\n  nonfinite: stop\n")


@FUZZ
@given(data=st.one_of(mutations(YAML_OK), st.binary(max_size=80)))
def test_fuzz_yaml_config_bytes(tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("cfg"), "c.yaml", data)
    try:
        load_config(path)
    except PosedistillError:
        pass


@FUZZ
@given(doc=json_values, section=st.sampled_from(["model", "data", "optim", "train", "schedule", "distill", "seed"]),
       key=st.sampled_from(["name", "input_size", "lr", "epochs", "batch_size", "milestones", "alpha", "sigma",
                            "nonfinite", "amp", "workers", "root", "train", "x"]))
def test_fuzz_yaml_config_values(tmp_path_factory, doc, section, key):
    import yaml

    path = tmp_path_factory.mktemp("cfgv") / "c.yaml"
    path.write_text(yaml.safe_dump({section: {key: doc}} if section != "seed" else {"seed": doc}))
    try:
        load_config(path)
    except PosedistillError:
        pass
    try:
        load_config(None, [f"{section}.{key}={json.dumps(doc)}"] if section != "seed" else [f"seed={doc!r}"])
    except PosedistillError:
        pass


# ------------------------------------------------------------------------------------------------ checkpoints
def _tiny_ckpt_bytes() -> bytes:
    torch.manual_seed(0)
    model = build_model("hg1_32", num_joints=14)
    buf = io.BytesIO()
    torch.save({"format": "posedistill-checkpoint", "version": 1, "arch": {"name": "hg1_32", "num_joints": 14},
                "joint_set": "lsp", "input_size": 64, "model": model.state_dict()}, buf)
    return buf.getvalue()


CKPT = _tiny_ckpt_bytes()


def _use_checkpoint(path: Path) -> None:
    try:
        model, ckpt = model_from_checkpoint(path)
    except PosedistillError as exc:
        event(f"refused: {str(exc).split(': ', 1)[1][:30]}")
        return
    event("loaded")
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, 64, 64))[-1]
    assert out.shape == (1, 14, 16, 16)


@FUZZ
@given(data=mutations(CKPT))
def test_fuzz_checkpoint_bytes(tmp_path_factory, data):
    _use_checkpoint(_write(tmp_path_factory.mktemp("ck"), "c.pt", data))


@FUZZ
@given(field=st.sampled_from(["arch", "joint_set", "input_size", "model", "format"]),
       value=st.one_of(json_values, st.just({"name": "hg1_32", "num_joints": "x"}),
                       st.just({"name": "nope", "num_joints": 14}), st.just({"name": "hg1_32", "num_joints": -3}),
                       st.just({"w": torch.zeros(3)}), st.just(torch.zeros(2))))
def test_fuzz_checkpoint_fields(tmp_path_factory, field, value):
    ckpt = torch.load(io.BytesIO(CKPT), weights_only=True)
    ckpt[field] = value
    path = tmp_path_factory.mktemp("ckf") / "c.pt"
    torch.save(ckpt, path)
    _use_checkpoint(path)
    try:
        from posedistill.inference.predictor import Predictor

        Predictor(path)
    except PosedistillError:
        pass


# ------------------------------------------------------------------------------------------------ ONNX
@pytest.fixture(scope="module")
def onnx_bytes(tmp_path_factory):
    from posedistill.deploy.onnx import export_onnx

    tmp = tmp_path_factory.mktemp("onnx")
    model, _ = model_from_checkpoint(_write(tmp, "c.pt", CKPT))
    export_onnx(model, tmp / "m.onnx", input_size=64, metadata={"joint_set": "lsp", "arch": "hg1_32"},
                check=False)
    return (tmp / "m.onnx").read_bytes()


@settings(max_examples=30, deadline=4000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_onnx(tmp_path_factory, onnx_bytes, data):
    from posedistill.inference.predictor import Predictor

    path = _write(tmp_path_factory.mktemp("ox"), "m.onnx", data.draw(mutations(onnx_bytes)))
    try:
        predictor = Predictor(path, backend="onnx", locate="none", threads=1)
        people = predictor(np.zeros((48, 40, 3), np.uint8)).to_records()
    except PosedistillError as exc:
        event(f"refused: {str(exc).split(': ', 1)[1][:30]}")
        return
    event("loaded and ran")
    assert len(people) == 1 and len(people[0]["keypoints"]) == 14


# ------------------------------------------------------------------------------------------------ valid inputs
# A reader that refused everything would pass every fuzz test above; these show that the unmutated inputs the
# fuzzers start from are accepted and read correctly.
def test_valid_images_are_read(tmp_path):
    for name, data, shape in (("a.jpg", JPEG, None), ("b.png", PNG, (40, 40, 3))):
        image = load_image(_write(tmp_path, name, data))
        assert image.dtype == np.uint8 and image.ndim == 3 and (shape is None or image.shape == shape)


def test_valid_joints_mat_is_read(tmp_path):
    _write(tmp_path, "joints.mat", MAT)
    records = read_lspet(tmp_path)
    assert len(records) > 0
    _check_records(records)


@pytest.mark.parametrize("kind", sorted(READERS))
def test_valid_annotation_json_is_read(tmp_path, kind):
    path = _write(tmp_path, "ann.json", json.dumps(VALID[kind]).encode())
    records = READERS[kind](path)
    assert len(records) == 1
    _check_records(records)


def test_valid_config_checkpoint_and_onnx_are_accepted(tmp_path, onnx_bytes):
    from posedistill.inference.predictor import Predictor

    cfg = load_config(_write(tmp_path, "c.yaml", YAML_OK))
    assert (cfg.model.name, cfg.data.input_size, cfg.train.epochs) == ("hg1_32", 64, 2)
    model, ckpt = model_from_checkpoint(_write(tmp_path, "c.pt", CKPT))
    assert ckpt["input_size"] == 64
    people = Predictor(_write(tmp_path, "m.onnx", onnx_bytes), backend="onnx", locate="none", threads=1)(
        np.zeros((48, 40, 3), np.uint8)).to_records()
    assert len(people) == 1 and len(people[0]["keypoints"]) == 14
