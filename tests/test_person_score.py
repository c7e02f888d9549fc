"""Issue 14: the localiser's learned person score (features, fitting, storage beside the weights, ranking)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posedistill.errors import CheckpointError
from posedistill.inference.localize import Candidate, Localizer
from posedistill.inference.person_score import (PersonScorer, candidate_features, heatmap_features, scorer_for,
                                                sidecar_path)
from posedistill.inference.scorer_fit import fit_person_scorer
from posedistill.models.meta import BOX_PADDING
from posedistill.models.pretrained import sha256_file

from helpers import make_checkpoint, model_meta


def _gaussian_maps(centres, size=16, sigma=1.5):
    yy, xx = np.mgrid[0:size, 0:size]
    return np.stack([np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2)) for cx, cy in centres])


def test_heatmap_features_tell_a_sharp_peak_from_a_diffuse_or_double_one():
    sharp = _gaussian_maps([(8, 8)], sigma=1.0)
    wide = _gaussian_maps([(8, 8)], sigma=4.0)
    double = np.maximum(_gaussian_maps([(3, 3)]), 0.9 * _gaussian_maps([(12, 12)]))
    f = heatmap_features(np.stack([sharp, wide, double]))  # (3, 1, 6)
    peak, mass, ratio, spread, second, low = f[:, 0].T
    assert np.allclose(peak, [1.0, 1.0, 1.0])
    assert ratio[0] > 3 * ratio[1] and spread[1] > 2 * spread[0]
    assert second[2] == pytest.approx(0.9, abs=0.01) and second[0] < 0.02


def test_candidate_features_are_scale_free_and_sized_by_joint_count():
    rng = np.random.default_rng(0)
    k = 14
    maps = rng.random((2, k, 16, 16)).astype(np.float32)
    pts = rng.uniform(100, 200, (2, k, 2))
    scores = rng.random((2, k))
    boxes = [[90, 80, 120, 130], [50, 60, 200, 220]]
    f = candidate_features(maps, pts, scores, boxes, padding=BOX_PADDING)
    assert f.shape == (2, 9 * k + 19) and np.all(np.isfinite(f))
    # the same scene 3x larger and shifted: identical features (all in the crop's frame)
    g = candidate_features(maps, pts * 3 + 7, scores, [[3 * x + 7, 3 * y + 7, 3 * w, 3 * h] for x, y, w, h in boxes],
                           padding=BOX_PADDING)
    assert np.allclose(f, g, atol=1e-4)
    # a box twice as large shows the same joints half as large in the crop
    big = candidate_features(maps[:1], pts[:1], scores[:1], [[30, 15, 240, 260]], padding=BOX_PADDING)
    span = slice(3 * k, 3 * k + 2)  # width and height of the joints' box, as a fraction of the crop
    assert np.allclose(big[0, span], f[0, span] / 2, rtol=0.02)


def test_fitted_scorer_ranks_by_what_predicts_the_target():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 5)).astype(np.float32)
    y = 1 / (1 + np.exp(-(2 * x[:, 2] - x[:, 0])))
    scorer = fit_person_scorer(x, y, num_joints=14, steps=300)
    test = rng.normal(size=(200, 5)).astype(np.float32)
    truth = 2 * test[:, 2] - test[:, 0]
    pred = scorer.score(test)
    assert pred.shape == (200,) and np.all((pred > 0) & (pred < 1))
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(rank(pred), rank(truth))[0, 1] > 0.95
    with pytest.raises(ValueError, match="finite targets"):
        fit_person_scorer(x, np.full(len(x), np.nan), num_joints=14)


def _scorer(num_joints=14, features=9 * 14 + 19, weights_sha256=None):
    rng = np.random.default_rng(2)
    return PersonScorer(num_joints, rng.normal(size=features), rng.uniform(0.5, 2, features),
                        [(rng.normal(size=(4, features)), rng.normal(size=4)), (rng.normal(size=(1, 4)),
                                                                               rng.normal(size=1))],
                        weights_sha256)


def test_scorer_round_trips_and_bad_files_get_one_line_errors(tmp_path):
    scorer = _scorer()
    path = tmp_path / "w.pt.person.json"
    scorer.save(path)
    again = PersonScorer.load(path)
    x = np.random.default_rng(3).normal(size=(5, scorer.num_features))
    assert np.allclose(scorer.score(x), again.score(x))
    for text, reason in [("{not json", "cannot read"), (json.dumps({"format": "other"}), "not a posedistill"),
                         (json.dumps({**scorer.to_dict(), "features_version": 99}), "features version 99")]:
        path.write_text(text)
        with pytest.raises(CheckpointError, match=reason) as err:
            PersonScorer.load(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    bad = scorer.to_dict()
    bad["layers"][1]["weight"] = [[1.0, 2.0]]  # 2 inputs after a 4-wide layer
    path.write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match="do not chain"):
        PersonScorer.load(path)
    bad = scorer.to_dict()
    bad["layers"][0]["bias"][0] = float("nan")
    path.write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match="non-finite"):
        PersonScorer.load(path)


def test_scorer_beside_the_weights_is_found_only_for_those_weights(tmp_path, capsys):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights")
    assert scorer_for(weights, 14) is None  # none there
    _scorer(weights_sha256=sha256_file(weights)).save(sidecar_path(weights))
    assert sidecar_path(weights).name == "model.pt.person.json"
    assert isinstance(scorer_for(weights, 14), PersonScorer)
    with pytest.raises(CheckpointError, match="14 joints, the model has 16"):
        scorer_for(weights, 16)
    weights.write_bytes(b"other weights")
    assert scorer_for(weights, 14) is None
    assert "fitted for other weights" in capsys.readouterr().err


def test_localizer_ranks_people_by_the_scorer_where_there_is_one():
    class Stub:  # just enough of a PoseNetwork for Localizer's checks
        weights = None
        meta = type("M", (), {"num_joints": 14, "box_padding": 1.25})()

    confident_but_wrong = Candidate([0, 0, 10, 10], np.zeros((14, 2)), np.full(14, 0.9), quality=0.1)
    right = Candidate([5, 5, 10, 10], np.zeros((14, 2)), np.full(14, 0.5), quality=0.7)
    assert right.score > confident_but_wrong.score
    no_quality = Candidate([5, 5, 10, 10], np.zeros((14, 2)), np.full(14, 0.5), stability=0.5)
    assert no_quality.score == pytest.approx(0.25)
    loc = Localizer(Stub(), method="pose")
    assert loc.scorer is None  # "auto" with no scorer beside the weights
    assert loc._select([confident_but_wrong, right])[0] is right
    with pytest.raises(CheckpointError, match="16 joints"):
        Localizer(Stub(), method="pose", scorer=_scorer(num_joints=16))


def test_localizer_finds_the_scorer_beside_real_weights_and_scores_every_candidate(tmp_path, lspet_mini):
    import cv2
    import torch

    from posedistill.inference.network import PoseNetwork
    from posedistill.models import stacked_hourglass

    torch.manual_seed(0)
    model = stacked_hourglass(stacks=1, channels=32, num_joints=14).eval()
    weights = tmp_path / "tiny.pt"
    make_checkpoint(weights, model, model_meta(model, "hg1_32", 64, sigma=1.5))
    image = cv2.imread(str(sorted((lspet_mini / "images").glob("*.jpg"))[0]))
    network = PoseNetwork.load(weights, threads=1)
    # fit on the features of this tiny model's own candidates, target: a made-up preference for the left
    loc = Localizer(network, method="pose", scorer=None)
    feats: list[np.ndarray] = []
    people = loc.poses([(image, b) for b in loc.candidates(image)], feats)
    x = np.concatenate(feats)
    assert x.shape == (len(people), 9 * 14 + 19)
    left = np.array([1.0 - (p.box[0] + p.box[2] / 2) / image.shape[1] for p in people])
    fit_person_scorer(x, left, num_joints=14, weights_sha256=sha256_file(weights)).save(sidecar_path(weights))
    auto = Localizer(network, method="pose")
    assert isinstance(auto.scorer, PersonScorer)
    best = auto.locate(image)
    quality = best.person_scores[0]  # with a scorer, the ranking score is its predicted fraction of right joints
    assert 0 < quality < 1
    assert auto.score_boxes(image, best.boxes).person_scores[0] == pytest.approx(quality, abs=1e-4)


def test_export_copies_the_checkpoints_person_scorer_keyed_to_the_onnx_file(tmp_path):
    import shutil

    from click.testing import CliRunner

    from posedistill.cli import main as cli
    from posedistill.inference.person_score import scorer_for, sidecar_path
    from posedistill.models.pretrained import default_weights

    shipped = default_weights(backend="torch")
    ckpt = tmp_path / "student.pt"
    shutil.copy(shipped, ckpt)
    shutil.copy(sidecar_path(shipped), sidecar_path(ckpt))
    res = CliRunner().invoke(cli, ["export", str(ckpt), "--onnx", str(tmp_path / "student.onnx")])
    assert res.exit_code == 0, res.output
    assert "person scorer" in res.output
    copied = scorer_for(tmp_path / "student.onnx", 14)
    assert copied is not None and copied.weights_sha256 != scorer_for(ckpt, 14).weights_sha256
    other = tmp_path / "other.pt"
    shutil.copy(shipped, other)  # no scorer beside it: nothing is written
    res = CliRunner().invoke(cli, ["export", str(other), "--onnx", str(tmp_path / "other.onnx")])
    assert res.exit_code == 0 and not sidecar_path(tmp_path / "other.onnx").exists()
