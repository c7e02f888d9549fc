import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posedistill.codec import (
    HeatmapCodec,
    affine_points,
    crop_to_image,
    get_affine_transform,
    heatmap_to_input,
    input_to_heatmap,
    invert_affine,
)
from posedistill.errors import ConfigError


def test_affine_maps_box_onto_output():
    m = get_affine_transform((100.0, 50.0), 80.0, 0.0, 256)
    pts = affine_points(np.array([[100.0, 50.0], [60.0, 10.0], [140.0, 90.0]]), m)
    # centre -> output centre, box corners -> outer pixel edges (-0.5, 255.5)
    np.testing.assert_allclose(pts, [[127.5, 127.5], [-0.5, -0.5], [255.5, 255.5]], atol=1e-9)


def test_rotation_matches_opencv_and_inverse():
    m = get_affine_transform((100.0, 50.0), 80.0, 30.0, 256)
    ref = cv2.getRotationMatrix2D((100.0, 50.0), 30.0, 256 / 80.0)
    np.testing.assert_allclose(m[:, :2], ref[:, :2], atol=1e-12)
    inv = get_affine_transform((100.0, 50.0), 80.0, 30.0, 256, inverse=True)
    p = np.array([[3.0, 4.0], [120.0, -7.0]])
    np.testing.assert_allclose(affine_points(affine_points(p, m), inv), p, atol=1e-9)
    np.testing.assert_allclose(invert_affine(np.stack([m, m]))[1], cv2.invertAffineTransform(m), atol=1e-9)


def test_warp_puts_a_pixel_where_affine_points_says():
    img = np.zeros((200, 300), np.float32)
    img[77, 141] = 1.0  # pixel centre (141, 77)
    m = get_affine_transform((150.0, 90.0), 64.0, 20.0, 256)  # 4x zoom
    crop = cv2.warpAffine(img, m, (256, 256), flags=cv2.INTER_LINEAR)
    ys, xs = np.mgrid[:256, :256]
    w = crop / crop.sum()
    centroid = np.array([(xs * w).sum(), (ys * w).sum()])
    np.testing.assert_allclose(centroid, affine_points(np.array([141.0, 77.0]), m), atol=0.05)


def test_heatmap_coordinate_convention():
    assert input_to_heatmap(1.5, 4) == 0.0 and heatmap_to_input(0.0, 4) == 1.5
    assert heatmap_to_input(input_to_heatmap(200.3, 4), 4) == pytest.approx(200.3)


def test_encode_shapes_peaks_and_weights():
    codec = HeatmapCodec(input_size=256, sigma=2.0)
    assert codec.heatmap_size == (64, 64)
    joints = np.array([[41.5, 81.5], [100.0, 100.0], [300.0, 10.0], [-3.0, 5.0], [np.nan, 5.0]])
    hm, w = codec.encode(joints, np.array([1, 0, 1, 1, 1]))
    assert hm.shape == (5, 64, 64) and hm.dtype == np.float32 and w.dtype == np.float32
    np.testing.assert_array_equal(w, [1, 0, 0, 0, 0])
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (20, 10)  # (81.5+.5)/4-.5 = 20, (41.5+.5)/4-.5 = 10
    assert hm[0].max() == pytest.approx(1.0)
    assert hm[0, 20, 12] == pytest.approx(np.exp(-4 / 8), rel=1e-5)  # sigma 2 heatmap pixels
    assert not hm[1:].any()


def test_decode_quarter_and_dark_accuracy():
    codec = HeatmapCodec(input_size=256, sigma=2.0)
    rng = np.random.default_rng(1)
    joints = rng.uniform(24, 232, (200, 2))  # >= 6 heatmap px from the border
    hm, _ = codec.encode(joints, np.ones(200))
    plain, scores = codec.decode(hm[None])
    dark, _ = codec.decode(hm[None], dark=True)
    err_plain = np.linalg.norm(plain[0] - joints, axis=1) / 4
    err_dark = np.linalg.norm(dark[0] - joints, axis=1) / 4
    assert plain.shape == (1, 200, 2) and scores.shape == (1, 200)
    assert 0.1 < err_plain.mean() < 0.3 and err_plain.max() < 0.36
    assert err_dark.max() < 0.01
    # noisy heatmaps: DARK still beats the quarter-pixel shift
    noisy = hm + np.random.default_rng(2).normal(0, 0.05, hm.shape).astype(np.float32)
    e_p = np.linalg.norm(codec.decode(noisy)[0] - joints, axis=1).mean()
    e_d = np.linalg.norm(codec.decode(noisy, dark=True)[0] - joints, axis=1).mean()
    assert e_d < e_p


def test_quarter_shift_direction():
    codec = HeatmapCodec(input_size=64, sigma=1.0)
    hm = np.zeros((1, 1, 16, 16), np.float32)
    hm[0, 0, 5, 7], hm[0, 0, 5, 8], hm[0, 0, 4, 7] = 1.0, 0.5, 0.2
    (u, v), = (codec.decode(hm)[0][0] + 0.5) / 4 - 0.5
    assert (u, v) == (7.25, 4.75)


@settings(max_examples=40, deadline=None)
@given(x=st.floats(8, 247), y=st.floats(8, 247), sigma=st.sampled_from([1.5, 2.0, 3.0]))
def test_dark_round_trip_property(x, y, sigma):
    codec = HeatmapCodec(input_size=256, sigma=sigma)
    hm, w = codec.encode(np.array([[x, y]]), np.ones(1))
    (got,), = codec.decode(hm[None], dark=True)[0]
    limit = 0.6 if min(x, y, 255 - x, 255 - y) < 24 else 0.02  # heatmap px; border: blur sees no mass outside
    assert np.hypot(*(got - [x, y])) / 4 < limit


def test_decode_to_image_through_inverse_affine():
    codec = HeatmapCodec(input_size=128, sigma=2.0)
    joints = np.array([[50.0, 60.0], [70.0, 40.0], [55.0, 80.0]])
    m = get_affine_transform((60.0, 60.0), 90.0, -25.0, 128)
    hm, _ = codec.encode(affine_points(joints, m), np.ones(3))
    coords, _ = codec.decode_to_image(hm[None], m[None], dark=True)
    np.testing.assert_allclose(coords[0], joints, atol=0.05)
    np.testing.assert_allclose(crop_to_image(affine_points(joints, m)[None], m[None])[0], joints, atol=1e-9)


def test_bad_config():
    with pytest.raises(ConfigError):
        HeatmapCodec(input_size=250)
    with pytest.raises(ConfigError):
        HeatmapCodec(sigma=0)
    with pytest.raises(ConfigError):
        HeatmapCodec().decode(np.zeros((4, 4)))
