"""The MediaPipe peer benchmark's pure helpers (benchmarks/peers): BlazePose -> LSP joint mapping, the 12-joint
PCK that counts a missed person as wrong, and the worker's square crop. No mediapipe needed."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from posedistill.evaluation import PCK
from posedistill.skeleton import get_joint_set

ROOT = Path(__file__).resolve().parents[1]

# BlazePose's 33 landmarks (MediaPipe Pose, PoseLandmark enum order); left/right are the person's
BLAZEPOSE_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "peers" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load("mediapipe_lspet")


def test_mapping_joins_joints_of_the_same_name(bench):
    lsp = get_joint_set("lsp").names
    assert len(bench.BLAZEPOSE_FOR_LSP) == 12 and bench.LIMB_JOINTS == tuple(range(12))
    for j, b in enumerate(bench.BLAZEPOSE_FOR_LSP):
        assert BLAZEPOSE_NAMES[b] == lsp[j]
    assert set(lsp) - {BLAZEPOSE_NAMES[b] for b in bench.BLAZEPOSE_FOR_LSP} == {"neck", "head_top"}


def test_blazepose_to_lsp(bench):
    landmarks = [[10.0 * i, 10.0 * i + 1, 0.9] for i in range(33)]
    out = bench.blazepose_to_lsp(landmarks)
    assert out.shape == (14, 2) and np.isnan(out[12:]).all()
    np.testing.assert_allclose(out[9], [110, 111])  # left shoulder is landmark 11
    np.testing.assert_allclose(out[0], [280, 281])  # right ankle is landmark 28
    swapped = bench.blazepose_to_lsp(landmarks, swap_sides=True)
    flip = get_joint_set("lsp").flip_index
    np.testing.assert_allclose(swapped[:12], out[flip[:12]])
    assert np.isnan(bench.blazepose_to_lsp(None)).all()
    with pytest.raises(ValueError):
        bench.blazepose_to_lsp(landmarks[:17])


def test_pck_matches_the_project_rule_and_counts_misses_as_wrong(bench):
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 200, (30, 14, 2))
    visible = (rng.random((30, 14)) > 0.15).astype(np.float32)
    norm = rng.uniform(40, 60, 30)
    norm[:3] = np.nan  # torso not visible: skipped
    pred = gt + rng.normal(0, 9, gt.shape)
    assert bench.pck(pred, gt, visible, norm)["mean"] == pytest.approx(PCK(0.2)(pred, gt, visible, norm)["mean"])
    limbs = bench.pck(pred, gt, visible, norm, bench.LIMB_JOINTS)
    assert len(limbs["per_joint"]) == 12
    assert limbs["per_joint"] == pytest.approx(PCK(0.2)(pred, gt, visible, norm)["per_joint"][:12])
    assert bench.pck(gt, gt, visible, norm, bench.LIMB_JOINTS)["mean"] == 100.0
    missed = gt.copy()
    missed[5] = np.nan  # a person not found: every visible joint of theirs wrong, not skipped
    hits = bench.pck(missed, gt, visible, norm, bench.LIMB_JOINTS)
    assert hits["count"] == bench.pck(gt, gt, visible, norm, bench.LIMB_JOINTS)["count"]
    expect = [100.0 * (c - (visible[5, j] > 0)) / c for j, c in enumerate(hits["count"])]
    assert hits["per_joint"] == pytest.approx(expect)


def test_true_box_gives_the_records_square(bench):
    from posedistill.data.records import box_to_square

    class Rec:
        center, scale = np.array([40.0, 70.0]), 125.0

    centre, side = box_to_square(bench.true_box(Rec, 1.25), 1.25)
    np.testing.assert_allclose(centre, [40, 70])
    assert side == pytest.approx(125.0)


def test_worker_square_crop_pads_and_keeps_offsets():
    worker = _load("mediapipe_worker")
    image = np.arange(20 * 30 * 3, dtype=np.int64).reshape(20, 30, 3).astype(np.uint8)
    crop, x0, y0 = worker.square_crop(image, 2.0, 10.0, 9)  # 9 px square centred on (2, 10): 2 columns outside
    assert crop.shape == (9, 9, 3) and (x0, y0) == (-2, 6)
    assert (crop[:, :2] == 0).all()
    np.testing.assert_array_equal(crop[:, 2:], image[6:15, 0:7])
