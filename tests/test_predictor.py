"""Issue 27, one inference path: the Predictor call, PoseResult, flip test through PoseNetwork (torch and ONNX), the
same records from the Python call, ``posedistill predict`` and ``posedistill serve``, the colour order, and
evaluation through the network."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fastapi.testclient import TestClient

import posedistill
from posedistill.cli import main
from posedistill.data import PoseDataset, build_loader
from posedistill.data.records import box_iou
from posedistill.data.scenes import joints_box
from posedistill.data.splits import read_split
from posedistill.deploy.onnx import export_onnx
from posedistill.errors import ConfigError, DataError
from posedistill.evaluation import evaluate_checkpoint, evaluate_predictions, predict_dataset
from posedistill.inference.network import PoseNetwork
from posedistill.inference.predictor import Predictor
from posedistill.inference.result import PoseResult
from posedistill.models import stacked_hourglass
from posedistill.models.checkpoint import model_from_checkpoint
from posedistill.models.meta import meta_from_checkpoint
from posedistill.models.pretrained import default_weights
from posedistill.quickstart import embedded_data_dir
from posedistill.serve import create_app
from posedistill.skeleton import LSP

from helpers import make_checkpoint, model_meta


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny hg1_32 at 64 input as a checkpoint and as its ONNX export."""
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    model = stacked_hourglass(stacks=1, channels=32, num_joints=14).eval()
    meta = model_meta(model, "hg1_32", 64)
    ckpt = make_checkpoint(folder / "m.pt", model, meta)
    onnx = export_onnx(model, folder / "m.onnx", input_size=64, metadata=meta.to_onnx_props(), check=False)
    return ckpt, onnx


@pytest.fixture(scope="module")
def shipped():
    return Predictor(threads=1)


@pytest.fixture(scope="module")
def photo():
    return embedded_data_dir() / "images" / "im00606.jpg"  # held aside from every shipped model's training


def test_flip_is_the_mean_of_the_crop_and_its_mirror_for_torch_and_onnx(tiny):
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    flipped = {}
    for path in tiny:
        net = PoseNetwork.load(path, threads=1)
        plain = net.heatmaps(x)
        mirror = net.heatmaps(np.ascontiguousarray(x[..., ::-1]))[:, LSP.flip_index, :, ::-1]
        flipped[net.backend] = net.heatmaps(x, flip=True)
        np.testing.assert_allclose(flipped[net.backend], (plain + mirror) / 2, atol=1e-6)
        assert not np.allclose(flipped[net.backend], plain, atol=1e-4)
    np.testing.assert_allclose(flipped["torch"], flipped["onnx"], atol=1e-4)  # one path for both backends


def test_predictor_flip_decodes_the_averaged_heatmaps(tiny):
    image = cv2.imread(str(embedded_data_dir() / "images" / "im00003.jpg"))
    box = [10.0, 5.0, 60.0, 90.0]
    for path in tiny:
        predictor = Predictor(path, flip=True, refine=False, threads=1)  # the first pass only
        net = predictor.network
        crop, matrix = net.preprocess(image, box)
        want = net.decode_heatmaps(net.heatmaps(crop[None], flip=True), matrix[None])
        got = predictor(image, [box])
        np.testing.assert_allclose(got.keypoints, want[0], atol=1e-5)
        np.testing.assert_allclose(got.scores, want[1], atol=1e-6)
        assert np.allclose(predictor(image, [box], flip=False).keypoints,
                           net.estimate(crop[None], matrix[None])[0], atol=1e-5)


def test_pose_result_records_and_helpers():
    pts = np.arange(2 * 14 * 2, dtype=np.float32).reshape(2, 14, 2)
    result = PoseResult([[1, 2, 3, 4], [5, 6, 7, 8]], pts, np.full((2, 14), 0.5), LSP, person_scores=[0.9, 0.4])
    assert len(result) == 2 and result.joint_names == tuple(LSP.names)
    (first,) = result[0].to_records(image="a.jpg", frame=3)
    assert list(first) == ["image", "frame", "bbox", "keypoints"]
    assert first["bbox"] == [1.0, 2.0, 3.0, 4.0] and first["keypoints"][1] == {
        "name": LSP.names[1], "x": 2.0, "y": 3.0, "score": 0.5}
    assert result[-1].person_scores.tolist() == [0.4] and len(result[0:2]) == 2
    with pytest.raises(IndexError):
        result[2]
    assert len(PoseResult.empty(LSP)) == 0 and PoseResult.empty(LSP).to_records() == []
    canvas = np.zeros((40, 60, 3), np.uint8)
    drawn = result[:1].draw(canvas)
    assert drawn.any() and not canvas.any()


def test_records_are_what_predict_writes(photo, tmp_path, shipped):
    out = tmp_path / "p.json"
    res = CliRunner().invoke(main, ["predict", str(photo), "--bbox", "10,5,90,100", "--threads", "1",
                                    "--no-progress", "-o", str(out)])
    assert res.exit_code == 0, res.output
    (written,) = json.loads(out.read_text())
    (record,) = shipped(cv2.imread(str(photo)), [[10, 5, 90, 100]]).to_records(image=str(photo))
    assert list(written) == list(record) and written["bbox"] == record["bbox"]
    assert [k["name"] for k in written["keypoints"]] == [k["name"] for k in record["keypoints"]]
    for a, b in zip(written["keypoints"], record["keypoints"]):
        assert (a["x"], a["y"], a["score"]) == pytest.approx((b["x"], b["y"], b["score"]), abs=1e-4)


def test_the_shortest_call_finds_the_person_in_a_larger_canvas(photo):
    (rec,) = read_split("lspet", embedded_data_dir(), "606-606")
    image = cv2.imread(str(photo))
    h, w = image.shape[:2]
    canvas = np.full((2 * h, 2 * w, 3), (60, 110, 160), np.uint8)
    canvas[h // 2:h // 2 + h, w // 3:w // 3 + w] = image
    predictor = posedistill.Predictor(threads=1)  # the shipped student
    people = predictor(canvas)  # no box: localised, as `posedistill predict` does
    truth = joints_box(rec.joints + [w // 3, h // 2], rec.visible)
    assert len(people) == 1 and people.person_scores is not None
    assert box_iou(people.boxes[0], truth) > 0.5, (people.boxes[0], truth)
    whole = Predictor.from_network(predictor.network, locate="none")
    assert whole(canvas).boxes[0].tolist() == [0.0, 0.0, 2.0 * w, 2.0 * h]


def test_bad_locate_is_refused_before_loading_the_weights(tmp_path):
    with pytest.raises(ConfigError, match="locate must be one of"):
        Predictor(tmp_path / "missing.pt", locate="everywhere")


def test_rgb_and_bgr_give_the_same_people(photo, shipped):
    bgr = cv2.imread(str(photo))
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    a, b = shipped(bgr), shipped(rgb, color="rgb")
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.keypoints, b.keypoints)
    assert not np.array_equal(shipped(rgb, a.boxes).keypoints, a.keypoints)  # the order matters
    with pytest.raises(ConfigError, match="color must be 'bgr' or 'rgb'"):
        shipped(bgr, color="hsv")
    with pytest.raises(DataError, match="H x W x 3"):
        shipped(bgr[:, :, 0])


def test_localised_people_are_estimated_again_with_flip(photo, shipped):
    image = cv2.imread(str(photo))
    flipping = Predictor.from_network(shipped.network, flip=True)
    plain, flipped = shipped(image), flipping(image)
    assert np.array_equal(plain.boxes, flipped.boxes)  # the same search: it is never flipped
    assert np.array_equal(plain.person_scores, flipped.person_scores)
    np.testing.assert_allclose(flipped.keypoints, shipped(image, plain.boxes, flip=True).keypoints, atol=1e-4)
    assert not np.allclose(flipped.keypoints, plain.keypoints, atol=1e-3)


def test_predict_flip_changes_the_output_and_matches_the_python_api(photo, tmp_path, shipped):
    runs = {}
    for flag in ([], ["--flip"]):
        out = tmp_path / f"p{len(flag)}.json"
        res = CliRunner().invoke(main, ["predict", str(photo), "--bbox", "10,5,90,100", "--threads", "1",
                                        "--no-progress", "-o", str(out), *flag])
        assert res.exit_code == 0, res.output
        runs[bool(flag)] = np.array([[k["x"], k["y"]] for k in json.loads(out.read_text())[0]["keypoints"]])
    assert not np.allclose(runs[True], runs[False], atol=1e-2)
    python = shipped(cv2.imread(str(photo)), [[10, 5, 90, 100]], flip=True).keypoints[0]
    np.testing.assert_allclose(runs[True], python, atol=1e-3)


def test_evaluation_through_the_network_equals_predict_dataset_with_the_module():
    """evaluate (the file loaded by PoseNetwork, BN folded) and the training loop's validation (its in-memory
    module as it is) give the same numbers, with and without flip."""
    weights = default_weights(backend="torch")
    module, ckpt = model_from_checkpoint(weights)
    meta = meta_from_checkpoint(ckpt, module, where=str(weights))
    records = read_split("lspet", embedded_data_dir(), "501-540")
    loader = build_loader(PoseDataset(records, meta=meta, train=False), batch_size=16, shuffle=False,
                          num_workers=0)
    for flip in (False, True):
        result = evaluate_checkpoint(weights, embedded_data_dir(), dataset="lspet", split="501-540", flip=flip)
        module_pred = predict_dataset(PoseNetwork(module, meta), loader, flip=flip)
        direct = evaluate_predictions(module_pred, meta.joints)
        assert result.num_people == direct.num_people == 40
        assert result.pck["mean"] == pytest.approx(direct.pck["mean"], abs=1e-9)
        assert result.auc == pytest.approx(direct.auc, abs=0.05)


@pytest.mark.parametrize("flip", [False, True])
def test_predict_serve_and_python_give_the_same_keypoints(photo, tmp_path, shipped, flip):
    """Issue 27, section 4: one photo and box through `posedistill predict`, `posedistill serve` (its app) and the
    Python call: the same keypoints and scores, with flip test off and on."""
    box = [10.0, 5.0, 90.0, 100.0]
    want = shipped(cv2.imread(str(photo)), [box], flip=flip)
    out = tmp_path / "p.json"
    res = CliRunner().invoke(main, ["predict", str(photo), "--bbox", "10,5,90,100", "--threads", "1",
                                    "--no-progress", "-o", str(out), *(["--flip"] if flip else [])])
    assert res.exit_code == 0, res.output
    with TestClient(create_app(Predictor.from_network(shipped.network))) as client:
        served = client.post(f"/predict?bbox=10,5,90,100&flip={int(flip)}", content=photo.read_bytes(),
                             headers={"Content-Type": "image/jpeg"})
    assert served.status_code == 200 and served.headers["X-Flip"] == str(int(flip)), served.text
    for (record,) in (json.loads(out.read_text()), served.json()):
        assert record["bbox"] == box and [k["name"] for k in record["keypoints"]] == list(LSP.names)
        np.testing.assert_allclose([[k["x"], k["y"]] for k in record["keypoints"]], want.keypoints[0], atol=1e-3)
        np.testing.assert_allclose([k["score"] for k in record["keypoints"]], want.scores[0], atol=1e-4)
    other = shipped(cv2.imread(str(photo)), [box], flip=not flip)
    assert not np.allclose(other.keypoints, want.keypoints, atol=1e-2)  # the setting reached every front end
