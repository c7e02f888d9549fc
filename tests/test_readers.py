import json
import warnings

import numpy as np
import pytest
import scipy.io

from posedistill.data import (
    lsp_split,
    lspet_split,
    lspet_split_images,
    read_coco,
    read_dataset,
    read_jsonfile,
    read_lsp,
    read_lspet,
    read_mpii,
)
from posedistill.errors import ConfigError, DataError


def test_lspet_reader_visibility_is_flag_1(shared_data):
    recs = read_lspet(shared_data / "lspet")
    raw = scipy.io.loadmat(shared_data / "lspet" / "joints.mat")["joints"]
    assert len(recs) == 9800 and recs[-1].image.name == "im09800.jpg"
    r = recs[0]
    assert r.image.name == "im00001.jpg" and r.image.is_file()
    np.testing.assert_array_equal(r.visible, raw[:, 2, 0] == 1)
    assert r.visible[0] == 0  # im00001's right ankle is flagged 0 = not visible
    np.testing.assert_allclose(r.joints, raw[:, :2, 0], rtol=1e-6)
    np.testing.assert_allclose(r.norm, np.linalg.norm(raw[9, :2, 0] - raw[2, :2, 0]), rtol=1e-6)
    assert np.isnan(recs[int(np.flatnonzero(raw[9, 2] == 0)[0])].norm)
    vis = r.joints[r.visible > 0]  # box holds all visible joints
    assert (np.abs(vis - r.center) <= r.scale / 2).all()


def test_lsp_reader_visibility_is_flag_0(shared_data):
    root = shared_data / "lsp" / "lsp_dataset"
    raw = scipy.io.loadmat(root / "joints.mat")["joints"]
    recs = read_lsp(root, indices=range(0, 1800, 7))
    assert recs[0].image.name == "im0001.jpg"
    flags = np.stack([raw[2, :, r.meta["index"]] for r in recs])
    np.testing.assert_array_equal(np.stack([r.visible for r in recs]), flags == 0)
    assert 0 < (flags == 1).mean() < 0.2  # some occluded, inverted w.r.t. LSPET
    assert len(lsp_split(root, "train")) == 1000 and len(lsp_split(root, "test")) == 800


def test_layouts_are_not_confused(shared_data):
    with pytest.raises(DataError, match=r"lspet/joints.mat.*\(14, 3, 9800\).*'lspet'"):
        read_lsp(shared_data / "lspet")
    with pytest.raises(DataError, match=r"joints.mat.*\(3, 14, 1800\).*'lsp'"):
        read_lspet(shared_data / "lsp" / "lsp_dataset")


def test_lspet_split_protocol(shared_data):
    names = ("train", "train6500", "val", "test")
    parts = {s: lspet_split(shared_data / "lspet", s) for s in names}
    assert [len(parts[s]) for s in names] == [8800, 6500, 500, 500]
    train = [r.image.name for r in parts["train"]]
    assert train[6499:6501] == ["im06500.jpg", "im07501.jpg"] and train[-1] == "im09800.jpg"
    assert [r.image.name for r in parts["train6500"]] == train[:6500]
    assert parts["val"][0].image.name == "im06501.jpg"
    assert parts["test"][0].image.name == "im07001.jpg" and parts["test"][-1].image.name == "im07500.jpg"
    held_out = {r.image.name for s in ("val", "test") for r in parts[s]}
    assert held_out.isdisjoint(train)
    with pytest.raises(ConfigError, match="train, train6500, val, test"):
        lspet_split(shared_data / "lspet", "valid")


def test_lspet_split_images_names_the_protocol_in_words():
    assert lspet_split_images("train") == "im00001-06500 and im07501-09800"
    assert lspet_split_images("train6500") == "im00001-06500"
    assert lspet_split_images("test") == "im07001-07500"
    assert lspet_split_images("1-1000") is None  # an image range, not a named split


def test_mpii_reader(shared_data, tmp_path):
    path = shared_data / "mpii" / "mmpose_fixture" / "test_mpii.json"
    raw = json.loads(path.read_text())
    recs = read_mpii(path)
    assert len(recs) == 5 and all(r.image.is_file() for r in recs)
    r, a = recs[0], raw[0]
    np.testing.assert_allclose(r.joints, np.array(a["joints"]) - 1, rtol=1e-6)  # MATLAB 1-based -> 0-based
    assert r.scale == pytest.approx(1.25 * 200 * a["scale"])
    assert r.center[1] == pytest.approx(a["center"][1] - 1 + 15 * a["scale"])
    assert np.isnan(r.norm) and r.joint_set == "mpii"
    a = dict(a, head_box=[10, 20, 40, 60])
    (tmp_path / "h.json").write_text(json.dumps([a]))
    assert read_mpii(tmp_path / "h.json", path.parent)[0].norm == pytest.approx(0.6 * 50)


def test_coco_reader(shared_data):
    recs = read_coco(shared_data / "coco" / "mmpose_fixture" / "test_coco.json")
    raw = json.loads((shared_data / "coco" / "mmpose_fixture" / "test_coco.json").read_text())
    labelled = [a for a in raw["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    assert len(recs) == len(labelled) == 12
    r = recs[0]
    kp = np.array(next(a for a in labelled if a["id"] == r.meta["ann_id"])["keypoints"]).reshape(17, 3)
    np.testing.assert_array_equal(r.visible, kp[:, 2] > 0)
    x, y, w, h = r.meta["bbox"]
    np.testing.assert_allclose(r.center, [x + w / 2, y + h / 2])
    assert r.scale == pytest.approx(max(w, h) * 1.25)


def test_json_format_round_trip(lspet_mini, tmp_path):
    recs = read_lspet(lspet_mini)
    people = [{"image": r.image.name, "keypoints": np.c_[r.joints, r.visible].tolist()} for r in recs]
    people.append({"image": "im00001.jpg", "keypoints": recs[0].joints.tolist(), "bbox": [0, 0, 50, 100]})
    (tmp_path / "a.json").write_text(json.dumps({"joint_set": "lsp", "image_root": str(lspet_mini / "images"),
                                                "people": people}))
    got = read_dataset("json", tmp_path / "a.json")
    assert len(got) == 5 and got[0].image == recs[0].image
    for a, b in zip(got, recs):
        np.testing.assert_allclose(a.joints, b.joints)
        np.testing.assert_array_equal(a.visible, b.visible)
        np.testing.assert_allclose(a.center, b.center)
    assert got[4].visible.all() and got[4].scale == pytest.approx(125) and tuple(got[4].center) == (25, 50)


def test_dispatch_errors(lspet_mini):
    assert len(read_dataset("lspet", lspet_mini)) == 4
    with pytest.raises(ConfigError, match="lsp, lspet, mpii, coco, json"):
        read_dataset("h36m", lspet_mini)


# --- bad annotation files (item 6): real annotations corrupted in a temp dir ------------------------------------

def _lspet_copy(lspet_mini, tmp_path, joints):
    (tmp_path / "images").symlink_to(lspet_mini / "images")
    scipy.io.savemat(tmp_path / "joints.mat", {"joints": joints})
    return tmp_path


def _raw(lspet_mini):
    return scipy.io.loadmat(lspet_mini / "joints.mat")["joints"]


def test_wrong_shape_annotation(lspet_mini, tmp_path):
    root = _lspet_copy(lspet_mini, tmp_path, _raw(lspet_mini)[:, :2])
    with pytest.raises(DataError, match=r"joints.mat.*shape \(14, 2, 4\)"):
        read_lspet(root)


def test_joint_count_mismatch(lspet_mini, tmp_path):
    root = _lspet_copy(lspet_mini, tmp_path, _raw(lspet_mini)[:13])
    with pytest.raises(DataError, match=r"joints.mat: 13 joints per person but the LSP joint set has 14"):
        read_lspet(root)
    bad = {"joint_set": "lsp", "people": [{"image": "x.jpg", "keypoints": [[1, 2, 1]] * 13}]}
    (tmp_path / "b.json").write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"b.json: person 0: 13 keypoints but the lsp joint set has 14"):
        read_jsonfile(tmp_path / "b.json")


def test_nan_annotation_raises_or_is_skipped_with_one_warning(lspet_mini, tmp_path):
    j = _raw(lspet_mini).copy()
    j[3, 0, 1] = np.nan
    j[5, 1, 2] = np.nan
    root = _lspet_copy(lspet_mini, tmp_path, j)
    with pytest.raises(DataError, match=r"joints.mat: image 2 \(index 1\) has non-finite"):
        read_lspet(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recs = read_lspet(root, skip_bad=True)
    assert [r.image.name for r in recs] == ["im00001.jpg", "im00004.jpg"]
    assert len(caught) == 1 and "skipped 2 of 4" in str(caught[0].message)


def test_unreadable_annotation_files(tmp_path):
    (tmp_path / "joints.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match="joints.mat: cannot read MATLAB file"):
        read_lspet(tmp_path)
    with pytest.raises(DataError, match="annotation file not found"):
        read_lspet(tmp_path / "nowhere")
    (tmp_path / "a.json").write_text("{ broken")
    with pytest.raises(DataError, match="a.json: not valid JSON"):
        read_mpii(tmp_path / "a.json")
    with pytest.raises(DataError, match="a.json: not a COCO annotation file"):
        read_coco(tmp_path / "a.json")
