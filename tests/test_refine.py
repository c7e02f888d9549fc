"""Issue 27, section 3: the re-crop of a given box on the network's own joints (``Predictor(refine=...)``), on a
real LSPET photo held aside from every shipped model's training (the embedded test slice), through the Python
call, ``posedistill predict`` and ``posedistill serve`` alike."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from posedistill.cli import main
from posedistill.data.scenes import joints_box
from posedistill.data.splits import read_split
from posedistill.errors import ConfigError
from posedistill.evaluation import joint_errors
from posedistill.inference.predictor import Predictor
from posedistill.data.records import box_ious
from posedistill.inference.refine import BoxRefinement, check_refine, squares
from posedistill.quickstart import embedded_data_dir
from posedistill.serve import create_app


@pytest.fixture(scope="module")
def shipped():
    return Predictor(threads=1, locate="none")


@pytest.fixture(scope="module")
def runner_photo():
    """Embedded im00551 (LSPET im07051, test slice): a runner whose joints' box the tests scale."""
    (rec,) = read_split("lspet", embedded_data_dir(), "551-551")
    return rec, cv2.imread(str(rec.image)), np.array(joints_box(rec.joints, rec.visible))


def _scaled(box: np.ndarray, factor: float) -> list[float]:
    centre = box[:2] + box[2:] / 2
    return [*(centre - box[2:] * factor / 2), *(box[2:] * factor)]


def _right(rec, keypoints: np.ndarray) -> int:
    """Joints within 0.2 torso of the truth (the project's PCK rule)."""
    err = joint_errors(keypoints, rec.joints[None], rec.visible[None], np.array([rec.norm]))[0]
    return int((np.nan_to_num(err, nan=np.inf) <= 0.2).sum())


def test_a_loose_box_is_cropped_again_and_the_pose_improves(shipped, runner_photo):
    rec, image, truth = runner_photo
    loose = _scaled(truth, 1.5)  # a detector's box 1.5x the joints' extent
    first = shipped(image, [loose], refine=False)
    auto = shipped(image, [loose], refine="auto")
    assert first.recropped.tolist() == [False] and auto.recropped.tolist() == [True]
    assert _right(rec, auto.keypoints) >= _right(rec, first.keypoints) + 4, (
        _right(rec, first.keypoints), _right(rec, auto.keypoints))  # measured 5 -> 12 of 14
    assert auto.boxes[0].tolist() == pytest.approx(loose)  # the box reported is the one given
    # the second crop is the box of the first pass's joints, scaled by the rule's margin
    rule = shipped.refinement
    crop = rule.crop_box(first.keypoints)
    net = shipped.network
    c, m = net.preprocess(image, crop[0])
    np.testing.assert_allclose(auto.keypoints, net.estimate(c[None], m[None])[0], atol=1e-4)
    assert shipped(image, [loose], refine=True).keypoints.tolist() == auto.keypoints.tolist()


def test_the_true_box_is_left_alone_under_auto(shipped, runner_photo):
    rec, image, truth = runner_photo
    plain = shipped(image, [truth], refine=False)
    auto = shipped(image, [truth])  # the predictor's default, "auto"
    assert shipped.refine == "auto" and auto.recropped.tolist() == [False]
    assert np.array_equal(auto.keypoints, plain.keypoints) and np.array_equal(auto.scores, plain.scores)
    assert box_ious(truth, BoxRefinement.extent(plain.keypoints))[0] >= shipped.refinement.min_iou
    always = shipped(image, [truth], refine=True)  # forced, it crops again (and moves the joints)
    assert always.recropped.tolist() == [True] and not np.allclose(always.keypoints, plain.keypoints, atol=1e-3)


def test_refine_in_a_batch_recrops_only_the_people_that_need_it(shipped, runner_photo):
    _, image, truth = runner_photo
    boxes = [truth.tolist(), _scaled(truth, 1.5), _scaled(truth, 1.6)]
    batch = shipped.estimate([shipped.prepare(image, boxes[:2]), shipped.prepare(image, boxes[2:])])
    assert batch[0].recropped.tolist() == [False, True] and batch[1].recropped.tolist() == [True]
    for people, chosen in ((batch[0], boxes[:2]), (batch[1], boxes[2:])):
        alone = [shipped(image, [b]).keypoints[0] for b in chosen]
        np.testing.assert_allclose(people.keypoints, np.stack(alone), atol=1e-4)


def test_predict_serve_and_python_give_the_same_refined_pose(shipped, runner_photo, tmp_path):
    rec, image, truth = runner_photo
    loose = _scaled(truth, 1.5)
    text = ",".join(f"{v:.3f}" for v in loose)
    box = [float(v) for v in text.split(",")]
    want = {mode: shipped(image, [box], refine=value) for mode, value in (("auto", "auto"), ("off", False))}
    assert not np.allclose(want["auto"].keypoints, want["off"].keypoints, atol=1e-2)
    app = create_app(Predictor.from_network(shipped.network))
    with TestClient(app) as client:
        for mode in ("auto", "off"):
            out = tmp_path / f"{mode}.json"
            res = CliRunner().invoke(main, ["predict", str(rec.image), "--bbox", text, "--refine", mode,
                                            "--threads", "1", "--no-progress", "-o", str(out)])
            assert res.exit_code == 0, res.output
            (cli,) = json.loads(out.read_text())
            served = client.post(f"/predict?bbox={text}&refine={'auto' if mode == 'auto' else '0'}",
                                 content=rec.image.read_bytes(), headers={"Content-Type": "image/jpeg"})
            assert served.status_code == 200, served.text
            assert served.headers["X-Refine"] == mode
            assert served.headers["X-Recropped"] == ("1" if mode == "auto" else "0")
            for record in (cli, served.json()[0]):
                assert record["bbox"] == pytest.approx(box)
                got = np.array([[k["x"], k["y"]] for k in record["keypoints"]])
                np.testing.assert_allclose(got, want[mode].keypoints[0], atol=1e-3)
        assert client.get("/health").json()["refine"] == "auto"
        bad = client.post("/predict?refine=sometimes", content=rec.image.read_bytes(),
                          headers={"Content-Type": "image/jpeg"})
        assert bad.status_code == 400 and "refine must be auto, 1 or 0" in bad.json()["error"]


def test_refine_values_are_checked():
    assert [check_refine(v) for v in ("auto", True, False, np.bool_(True))] == ["auto", True, False, True]
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError, match="refine must be 'auto', True or False"):
            check_refine(bad)
    with pytest.raises(ConfigError, match="refine must be"):
        Predictor(embedded_data_dir() / "missing.pt", refine="always")  # refused before the weights load
    with pytest.raises(ConfigError, match="min_iou"):
        BoxRefinement(min_iou=1.5)
    res = CliRunner().invoke(main, ["predict", "x.jpg", "--refine", "sometimes"])
    assert res.exit_code == 2 and "sometimes" in res.output


def test_box_refinement_geometry():
    pts = np.array([[[10.0, 20.0], [30.0, 60.0], [20.0, 40.0]]])
    assert BoxRefinement.extent(pts).tolist() == [[10.0, 20.0, 20.0, 40.0]]
    assert BoxRefinement(margin=0.5).crop_box(pts).tolist() == [[15.0, 30.0, 10.0, 20.0]]
    assert box_ious([0, 0, 10, 10], [5, 0, 10, 10]).tolist() == pytest.approx([50 / 150])
    rule = BoxRefinement(min_iou=0.5)
    boxes = np.array([[10.0, 20.0, 20.0, 40.0], [0.0, 0.0, 60.0, 90.0]])
    both = np.concatenate([pts, pts])
    assert rule.needed(boxes, both, "auto").tolist() == [False, True]
    assert rule.needed(boxes, both, True).tolist() == [True, True]
    assert rule.needed(boxes, both, False).tolist() == [False, False]


def test_auto_compares_the_crops_squares_so_a_square_box_about_the_person_is_left_alone():
    pts = np.array([[[10.0, 20.0], [30.0, 60.0], [20.0, 40.0]]])  # a tall person: extent 20 x 40
    square = np.array([[0.0, 20.0, 40.0, 40.0]])  # the square about the same centre: the same crop
    assert squares(BoxRefinement.extent(pts)).tolist() == square.tolist()
    assert box_ious(square, BoxRefinement.extent(pts))[0] == pytest.approx(0.5)  # the boxes' own IoU disagrees
    rule = BoxRefinement(min_iou=0.7)
    assert rule.needed(square, pts, "auto").tolist() == [False]
    loose = np.array([[-10.0, 0.0, 60.0, 80.0]])  # twice the extent square's side: a different crop
    assert rule.needed(loose, pts, "auto").tolist() == [True]
