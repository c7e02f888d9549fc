"""Issue 27, section 2: the person finder (model, decoding, letterbox, the shipped weights, the localiser's finder
search, shipping a finder)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from posedistill.data.records import box_iou
from posedistill.data.scenes import joints_box
from posedistill.data.splits import read_split
from posedistill.errors import CheckpointError, ConfigError
from posedistill.inference.finder import Finder
from posedistill.inference.localize import Localizer
from posedistill.inference.network import PoseNetwork
from posedistill.data.transforms import letterbox
from posedistill.models.finder import FILL_BGR, decode_people, finder_from_checkpoint, person_finder
from posedistill.models.pretrained import DEFAULT_WEIGHTS_DIR, default_weights, read_manifest
from posedistill.quickstart import embedded_data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_finder_output_is_a_stride_8_grid_of_5_channels():
    model = person_finder(width=8, input_size=128).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 128, 128))
    assert out.shape == (2, 5, 16, 16)
    with pytest.raises(ValueError, match="multiple of 64"):
        person_finder(width=8, input_size=100)


def test_decode_takes_local_maxima_best_first_with_offset_and_size():
    out = np.full((1, 5, 16, 16), -10.0, np.float32)
    out[0, 0, 4, 6] = 3.0     # the best centre: cell (x 6, y 4)
    out[0, 0, 4, 7] = 2.0     # its neighbour: not a local maximum
    out[0, 0, 12, 2] = 1.0    # a second person
    out[0, 1:3, 4, 6] = 0.0   # sigmoid 0.5: the centre of the cell
    out[0, 3, 4, 6], out[0, 4, 4, 6] = np.log(0.25), np.log(0.5)  # 32 x 64 px at 128 input
    found = decode_people(out, top_k=3, input_size=128)[0]
    assert [round(s, 3) for s, _ in found[:2]] == [round(1 / (1 + np.exp(-3.0)), 3), round(1 / (1 + np.exp(-1.0)), 3)]
    np.testing.assert_allclose(found[0][1], [6.5 * 8 - 16, 4.5 * 8 - 32, 32, 64], atol=1e-4)
    low = 1 / (1 + np.exp(10.0))  # the second peak's offset: sigmoid(-10), at the cell's corner
    assert found[1][1][0] == pytest.approx((2 + low) * 8 - found[1][1][2] / 2, abs=1e-4)


def test_letterbox_maps_image_points_and_pads_with_the_zero_colour():
    image = np.zeros((60, 120, 3), np.uint8)
    canvas, scale, offset = letterbox(image, 128, FILL_BGR)
    assert canvas.shape == (128, 128, 3) and scale == pytest.approx(128 / 120)
    assert offset.tolist() == [0.0, 32.0]
    assert tuple(canvas[0, 0]) == FILL_BGR and tuple(canvas[64, 64]) == (0, 0, 0)


def test_a_bad_finder_checkpoint_is_refused_naming_the_file(tmp_path):
    bad = tmp_path / "finder.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="finder.pt: refused to load"):
        finder_from_checkpoint(bad)
    torch.save({"model": {}, "width": 8}, bad)
    with pytest.raises(CheckpointError, match="not a person-finder checkpoint"):
        finder_from_checkpoint(bad)


def _people(first: int, last: int):
    return read_split("lspet", embedded_data_dir(), f"{first}-{last}")


def test_the_shipped_finder_finds_the_person_and_torch_and_onnx_agree():
    finder, eager = Finder.shipped(threads=1), Finder.shipped(threads=1, backend="torch")
    assert finder is not None and finder.backend == "onnx" and eager.backend == "torch"
    records = _people(601, 620)
    images = [cv2.imread(str(r.image)) for r in records]
    found, found_eager = finder.find_many(images), eager.find_many(images)
    ious = [box_iou(f[0][1], joints_box(r.joints, r.visible)) for f, r in zip(found, records)]
    assert np.mean(ious) > 0.45 and np.mean(np.array(ious) > 0.3) >= 0.75, ious
    for a, b in zip(found, found_eager):
        assert a[0][0] == pytest.approx(b[0][0], abs=1e-3)
        np.testing.assert_allclose(a[0][1], b[0][1], atol=0.05)
    assert len(finder(images[0], top_k=3)) >= 1


def test_the_localizer_searches_from_the_finder_in_five_crops():
    network = PoseNetwork.load(threads=1)
    auto = Localizer(network)
    assert auto.method == "finder" and isinstance(auto.finder, Finder)
    assert (auto.top_k, auto.keep_joints, auto.margin, auto.final_scales) == (1, 14, 1.0, (0.9, 1.0, 1.1))
    records = _people(621, 630)
    hits = 0
    for rec in records:
        people = auto.locate(cv2.imread(str(rec.image)))
        hits += box_iou(people.boxes[0], joints_box(rec.joints, rec.visible)) > 0.5
    assert hits >= 7
    assert auto.stats["forward_crops"] == 5 * len(records)  # the finder's box, 2 refinements, 2 more scales
    grid = Localizer(network, method="pose")
    assert grid.finder is None and grid.margin == 1.2 and grid.keep_joints == 10
    with pytest.raises(ConfigError, match="needs a person finder"):
        Localizer(network, method="finder", finder=None)


def test_several_people_come_from_the_finders_best_peaks():
    network = PoseNetwork.load(threads=1)
    (rec,) = _people(622, 622)
    image = cv2.imread(str(rec.image))
    two = np.concatenate([image, image[:, ::-1]], axis=1)  # the person and their mirror image side by side
    people = Localizer(network, max_people=2).locate(two)
    assert len(people) == 2
    centres = sorted(float(b[0] + b[2] / 2) for b in people.boxes)
    assert centres[0] < image.shape[1] < centres[1]


def test_ship_finder_sets_the_manifest_entry_and_keeps_the_students(tmp_path):
    out = tmp_path / "weights"
    shutil.copytree(DEFAULT_WEIGHTS_DIR, out, ignore=shutil.ignore_patterns("teacher_*.pt"))
    manifest = json.loads((out / "default.json").read_text())
    manifest.pop("teacher", None)
    (out / "default.json").write_text(json.dumps(manifest))
    ckpt = tmp_path / "small.pt"
    torch.save({"model": person_finder(width=8).state_dict(), "width": 8, "input_size": 128, "epoch": 3}, ckpt)
    subprocess.run([sys.executable, str(ROOT / "tools" / "ship_finder.py"), str(ckpt), "--name", "finder_small",
                    "--command", "train it", "--out", str(out)], check=True, capture_output=True)
    info = read_manifest(out)
    assert info["students"] == manifest["students"] and info["finder"]["width"] == 8
    old = manifest["finder"]
    assert not (out / old["file"]).exists() and not (out / old["onnx"]["file"]).exists()  # the replaced finder
    finder = Finder.shipped(out, threads=1)
    assert finder.weights.name == "finder_small.onnx" and finder.input_size == 128
    assert default_weights(out, role="finder", backend="torch").name == "finder_small.pt"
    (out / "finder_small.onnx").write_bytes(b"changed")
    with pytest.raises(CheckpointError, match="does not match"):
        Finder.shipped(out)


def test_no_finder_in_the_manifest_means_the_window_search(tmp_path):
    shutil.copy(DEFAULT_WEIGHTS_DIR / "default.json", tmp_path / "default.json")
    manifest = json.loads((tmp_path / "default.json").read_text())
    manifest.pop("finder")
    (tmp_path / "default.json").write_text(json.dumps(manifest))
    assert Finder.shipped(tmp_path) is None
    with pytest.raises(CheckpointError, match="no finder is shipped"):
        default_weights(tmp_path, role="finder")


def test_warm_up_runs_the_box_path_and_the_finder_search_once():
    from posedistill.inference.predictor import Predictor

    predictor = Predictor(threads=1)
    predictor.warm_up()
    assert predictor.localizer.stats["forward_crops"] == 5
    Predictor(threads=1, locate="none").warm_up()  # no localiser: the box path only


def test_unlabeled_images_are_cropped_on_the_person_the_finder_finds(tmp_path):
    from posedistill.config import config_from_dict
    from posedistill.data import unlabeled_records
    from posedistill.data.records import box_to_square
    from posedistill.errors import ConfigError as BadConfig

    for rec in _people(603, 605):
        shutil.copy(rec.image, tmp_path / rec.image.name)
    finder = Finder.shipped(threads=1)
    found = unlabeled_records(tmp_path, "lsp", padding=1.25, person_box=lambda image: finder(image)[0][1])
    whole = unlabeled_records(tmp_path, "lsp")
    for rec, plain, truth in zip(found, whole, _people(603, 605)):
        centre, side = box_to_square(finder(cv2.imread(str(rec.image)))[0][1], 1.25)
        np.testing.assert_allclose(rec.center, centre)
        assert rec.scale == pytest.approx(side) and rec.meta["box"] == "person" and plain.meta["box"] == "whole"
        assert rec.scale < plain.scale  # the person, not the whole photo
        assert box_iou([*(rec.center - rec.scale / 2), rec.scale, rec.scale],
                       [*(truth.center - truth.scale / 2), truth.scale, truth.scale]) > 0.3
    with pytest.raises(BadConfig, match="unlabeled_box must be finder or whole"):
        config_from_dict({"distill": {"unlabeled_box": "detector"}})
