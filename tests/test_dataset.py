import shutil
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from posedistill.codec import HeatmapCodec, affine_points, crop_to_image, get_affine_transform
from posedistill.data import AugmentConfig, PoseDataset, build_loader, read_lspet
from posedistill.errors import ConfigError, DataError
from posedistill.skeleton import LSP

from helpers import pixels


@pytest.fixture()
def records(lspet_mini):
    return read_lspet(lspet_mini)


def test_item_layout_and_collate(records):
    ds = PoseDataset(records, meta=pixels(input_size=128), train=True)
    item = ds[0]
    shapes = {k: tuple(v.shape) for k, v in item.items()}
    assert shapes["image"] == (3, 128, 128) and shapes["target"] == (14, 32, 32) and shapes["matrix"] == (2, 3)
    assert shapes["joints"] == (14, 2) and shapes["scale"] == () and shapes["index"] == ()
    batch = default_collate([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 128, 128) and batch["norm"].shape == (3,)


def test_eval_crop_is_plain_and_targets_decode_back_to_the_joints(records):
    ds = PoseDataset(records, meta=pixels(input_size=256), train=False)
    codec = HeatmapCodec(input_size=256)
    for i, rec in enumerate(records):
        item = ds[i]
        assert not item["flipped"]
        np.testing.assert_allclose(item["matrix"].numpy(), get_affine_transform(rec.center, rec.scale, 0, 256))
        coords, _ = codec.decode(item["target"].numpy()[None], dark=True)
        back = crop_to_image(coords, item["matrix"].numpy()[None])[0]
        w = item["target_weight"].numpy() > 0
        np.testing.assert_array_equal(w, rec.visible > 0)  # the eval box holds every visible joint
        # < 0.5 px in the original image (a crop pixel is scale/256 of an image pixel)
        assert np.abs(back[w] - rec.joints[w]).max() < 0.5
    assert torch.equal(ds[1]["image"], ds[1]["image"])


def test_train_augmentation_reproducible_and_epoch_dependent(records):
    a = PoseDataset(records, meta=pixels(input_size=128), train=True, seed=3)
    b = PoseDataset(records, meta=pixels(input_size=128), train=True, seed=3)
    assert torch.equal(a[2]["image"], b[2]["image"]) and torch.equal(a[2]["target"], b[2]["target"])
    b.set_epoch(1)
    assert torch.equal(b[2]["matrix"], a[(1, 2)]["matrix"])
    assert not torch.equal(a[(0, 2)]["matrix"], a[(1, 2)]["matrix"])
    c = PoseDataset(records, meta=pixels(input_size=128), train=True, seed=4)
    assert not torch.equal(a[2]["matrix"], c[2]["matrix"])


def test_flip_swaps_left_and_right(records):
    cfg = AugmentConfig(scale_factor=0, rotation=0, color_jitter=0)
    ds = PoseDataset(records, meta=pixels(input_size=128), train=True, augment=cfg)
    plain = PoseDataset(records, meta=pixels(input_size=128), train=False)
    codec = HeatmapCodec(input_size=128)
    epoch = next(e for e in range(20) if ds.augmentation(1, e).flip)
    f, p = ds[(epoch, 1)], plain[1]
    assert f["flipped"]
    torch.testing.assert_close(f["image"], p["image"].flip(-1), atol=0.04, rtol=0)  # mirrored (+-1 grey level)
    cf = codec.decode(f["target"].numpy(), dark=True)[0]
    cp = codec.decode(p["target"].numpy(), dark=True)[0]
    la, ra = LSP.index("left_ankle"), LSP.index("right_ankle")
    lw, rw = LSP.index("left_wrist"), LSP.index("right_wrist")
    for left, right in ((la, ra), (lw, rw)):
        if p["target_weight"][right] > 0:  # flipped crop's LEFT joint = mirror of plain crop's RIGHT joint
            np.testing.assert_allclose(cf[left], [127 - cp[right][0], cp[right][1]], atol=0.05)
    np.testing.assert_array_equal(f["target_weight"].numpy(), p["target_weight"].numpy()[LSP.flip_index])


def test_joints_outside_crop_get_zero_weight(records):
    rec = records[1]
    small = type(rec)(rec.image, rec.joints, rec.visible, rec.joints[LSP.index("head_top")], 30.0, rec.norm)
    item = PoseDataset([small], meta=pixels(input_size=64), train=False)[0]
    inside = np.abs(affine_points(rec.joints, item["matrix"].numpy()) - 31.5).max(1) <= 32
    np.testing.assert_array_equal(item["target_weight"].numpy(), (inside & (rec.visible > 0)).astype(np.float32))
    assert 0 < item["target_weight"].sum() < rec.visible.sum()
    assert not item["target"][item["target_weight"] == 0].any()


def test_config_errors(records):
    with pytest.raises(ConfigError, match="multiple of 64"):
        PoseDataset(records, meta=pixels(input_size=100), train=False)
    with pytest.raises(DataError, match="im00001.jpg: 14 joints but the mpii joint set has 16"):
        PoseDataset(records, meta=pixels("mpii"), train=False)


# --- bad images (item 6): real files corrupted in a temp dir ------------------------------------------------------

@pytest.fixture()
def broken(lspet_mini, tmp_path):
    shutil.copytree(lspet_mini, tmp_path / "d")
    img = tmp_path / "d" / "images"
    (img / "im00002.jpg").unlink()  # missing
    (img / "im00003.jpg").write_bytes(b"GIF? no, just text\n" * 50)  # unreadable
    data = (img / "im00004.jpg").read_bytes()
    (img / "im00004.jpg").write_bytes(data[: len(data) // 2])  # truncated
    return read_lspet(tmp_path / "d")


@pytest.mark.parametrize("idx,reason", [(1, "image file not found"), (2, "not a recognised image format"),
                                        (3, "truncated JPEG")])
def test_bad_image_raises_naming_file(broken, idx, reason):
    with pytest.raises(DataError, match=rf"im0000{idx + 1}.jpg: {reason}"):
        PoseDataset(broken[idx: idx + 1], meta=pixels(), train=False)
    ds = PoseDataset(broken[idx: idx + 1], meta=pixels(), train=False, check_images=False)
    with pytest.raises(DataError, match=rf"im0000{idx + 1}.jpg: {reason}"):
        ds[0]


def test_bad_images_skipped_with_one_warning(broken):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = PoseDataset(broken, meta=pixels(), train=False, skip_bad=True)
    assert len(ds) == 1 and ds.num_skipped == 3 and ds[0]["index"] == 0
    assert len(caught) == 1 and "skipped 3 of 4 samples" in str(caught[0].message)
    lazy = PoseDataset(broken, meta=pixels(), train=False, skip_bad=True, check_images=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert lazy[1]["index"] == 0  # falls through the 3 bad ones to the next good sample
    assert "im00002.jpg: image file not found" in str(caught[0].message) and len(caught) == 3


# --- loader -----------------------------------------------------------------------------------------------------

def test_loader_same_batches_with_and_without_workers(records):
    ds = PoseDataset(records * 2, meta=pixels(input_size=64), train=True, seed=1)
    serial = build_loader(ds, batch_size=4, shuffle=True, num_workers=0, seed=5)
    parallel = build_loader(ds, batch_size=4, shuffle=True, num_workers=2, seed=5)
    for epoch in range(2):  # persistent workers must follow the epoch
        a, b = list(serial), list(parallel)
        assert len(a) == len(b) == 2
        for x, y in zip(a, b):
            assert torch.equal(x["index"], y["index"]) and torch.equal(x["image"], y["image"])
        if epoch == 0:
            first = a
    assert not torch.equal(first[0]["matrix"], a[0]["matrix"])
    serial.sampler.set_epoch(0)
    assert torch.equal(next(iter(serial))["image"], first[0]["image"])  # resume at an epoch


def test_negative_samples_hold_no_joint_and_have_zero_targets(records):
    """augment.negative_prob: windows of the photo without the person, all-zero targets at full weight."""
    cfg = AugmentConfig(negative_prob=0.5)
    ds = PoseDataset(records, meta=pixels(input_size=128), train=True, augment=cfg)
    plain = PoseDataset(records, meta=pixels(input_size=128), train=True)
    negatives = 0
    for epoch in range(12):
        for i, rec in enumerate(records):
            item = ds[(epoch, i)]
            if not item["negative"]:
                # an ordinary sample is exactly the one without negatives
                assert torch.equal(item["matrix"], plain[(epoch, i)]["matrix"])
                continue
            negatives += 1
            assert item["target"].abs().max() == 0 and torch.all(item["target_weight"] == 1)
            # every annotated joint maps outside the crop
            inside = affine_points(rec.joints, item["matrix"].numpy())
            assert not ((inside >= 0) & (inside < 128)).all(axis=1).any()
            assert torch.equal(item["image"], ds[(epoch, i)]["image"])  # reproducible
    assert negatives > 5  # 48 draws at p 0.5; some photos have no room for a window
    default_collate([ds[(0, i)] for i in range(len(records))])  # negatives and positives batch together


def test_negative_prob_zero_keeps_the_earlier_draws_and_is_validated():
    from posedistill.data.transforms import sample_augmentation
    for i in range(50):
        u = np.random.default_rng(i).random(9)
        a = sample_augmentation(np.random.default_rng(i), AugmentConfig())
        assert a.scale == pytest.approx(1 + 0.25 * (2 * u[0] - 1)) and a.flip == (u[3] < 0.5) and not a.negative
    with pytest.raises(ConfigError, match="negative_prob"):
        AugmentConfig(negative_prob=1.0)
    with pytest.raises(ConfigError, match="negative_prob"):
        AugmentConfig(negative_prob=-0.1)


def test_no_negatives_from_records_without_joints(records):
    from dataclasses import replace
    blind = [replace(r, visible=np.zeros_like(r.visible)) for r in records]
    ds = PoseDataset(blind, meta=pixels(input_size=128), train=True, augment=AugmentConfig(negative_prob=0.9))
    assert not any(bool(ds[(e, i)]["negative"]) for e in range(5) for i in range(len(blind)))


def test_half_body_crops_frame_one_part_and_keep_the_other_draws(records):
    """augment.half_body_prob: the crop is the box of the upper or lower body's visible joints, padded 1.5 x."""
    plain_cfg = AugmentConfig(rotation=0.0, scale_factor=0.0, flip=False)
    half_cfg = AugmentConfig(rotation=0.0, scale_factor=0.0, flip=False, half_body_prob=1.0)
    plain = PoseDataset(records, meta=pixels(input_size=128), train=True, augment=plain_cfg)
    half = PoseDataset(records, meta=pixels(input_size=128), train=True, augment=half_cfg)
    lower = np.zeros(14, dtype=bool)
    lower[list(LSP.lower_body)] = True
    assert lower.sum() == 6 and not lower[[6, 7, 8, 9, 10, 11, 12, 13]].any()
    changed = 0
    for epoch in range(4):
        for i, rec in enumerate(records):
            aug = half.augmentation(i, epoch)
            assert aug.half_body in ("upper", "lower")
            a, b = plain[(epoch, i)], half[(epoch, i)]
            assert a["flipped"] == b["flipped"]
            if (rec.visible > 0).sum() <= 8:
                assert torch.equal(a["matrix"], b["matrix"])  # too few joints: the whole person
                continue
            changed += 1
            part = lower if aug.half_body == "lower" else ~lower
            if ((rec.visible > 0) & part).sum() < 2:
                continue  # the other part was framed
            pts = affine_points(rec.joints[(rec.visible > 0) & part], b["matrix"].numpy())
            assert ((pts >= 0) & (pts < 128)).all()  # the chosen part is in the crop ...
            assert np.ptp(pts, axis=0).max() == pytest.approx(128 / 1.5, rel=0.02) or \
                np.ptp(pts, axis=0).max() < 128 / 1.5  # ... framed with 1.5 x padding (or the 0.25 floor)
    assert changed > 0


def test_random_erasing_changes_only_a_rectangle_and_keeps_targets(records):
    cfg = AugmentConfig(erase_prob=1.0)
    plain = PoseDataset(records, meta=pixels(input_size=128), train=True, augment=AugmentConfig())
    erased = PoseDataset(records, meta=pixels(input_size=128), train=True, augment=cfg)
    for i in range(len(records)):
        a, b = plain[(0, i)], erased[(0, i)]
        assert torch.equal(a["target"], b["target"]) and torch.equal(a["matrix"], b["matrix"])
        diff = (a["image"] != b["image"]).any(dim=0).numpy()
        ys, xs = np.nonzero(diff)
        assert len(ys) > 0
        x0, y0, w, h = erased.augmentation(i, 0).erase
        box_area = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
        assert 0.015 * 128 ** 2 <= box_area <= 0.34 * 128 ** 2  # 2-33 % of the crop
        assert xs.min() >= round(x0 * 128) - 1 and ys.min() >= round(y0 * 128) - 1
        assert torch.equal(b["image"], erased[(0, i)]["image"])  # reproducible


def test_new_augmentations_keep_the_earlier_draws_and_are_validated():
    from posedistill.data.transforms import sample_augmentation
    for i in range(30):
        a = sample_augmentation(np.random.default_rng(i), AugmentConfig(negative_prob=0.3))
        b = sample_augmentation(np.random.default_rng(i), AugmentConfig(negative_prob=0.3, half_body_prob=0.5,
                                                                         erase_prob=0.5))
        assert (a.scale, a.rotation, a.flip, a.color, a.shift, a.negative) == \
            (b.scale, b.rotation, b.flip, b.color, b.shift, b.negative)
    for key in ("half_body_prob", "erase_prob"):
        with pytest.raises(ConfigError, match=key):
            AugmentConfig(**{key: 1.5})
        with pytest.raises(ConfigError, match=key):
            AugmentConfig(**{key: -0.1})


def test_the_dataset_makes_the_pixels_its_model_record_says(lspet_mini):
    import dataclasses

    records = read_lspet(lspet_mini)
    meta = pixels(input_size=64)
    plain = dataclasses.replace(meta, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), stride=8)
    a = PoseDataset(records, meta=meta, train=False)[0]
    b = PoseDataset(records, meta=plain, train=False)[0]
    # the same crop, standardised by each record's mean and std; targets on each record's heatmap grid
    mean, std = (np.asarray(v, np.float32).reshape(3, 1, 1) for v in (meta.mean, meta.std))
    np.testing.assert_allclose(a["image"].numpy(), (b["image"].numpy() - mean) / std, rtol=1e-5, atol=1e-5)
    assert a["target"].shape[-1] == 16 and b["target"].shape[-1] == 8
