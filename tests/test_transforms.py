import numpy as np
import pytest

from posedistill.codec import affine_points, get_affine_transform
from posedistill.data.transforms import (
    AugmentConfig,
    color_jitter,
    crop_person,
    denormalize_image,
    normalize_image,
    sample_augmentation,
)
from posedistill.errors import ConfigError
from posedistill.models.meta import IMAGE_MEAN, IMAGE_STD


def test_normalize_is_rgb_and_invertible():
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 0] = 255  # pure blue
    x = normalize_image(bgr, mean=IMAGE_MEAN, std=IMAGE_STD)
    assert x.shape == (3, 4, 5) and x.dtype == np.float32
    np.testing.assert_allclose(x[2], (1 - IMAGE_MEAN[2]) / IMAGE_STD[2], rtol=1e-6)  # blue is channel 2 (RGB)
    np.testing.assert_allclose(x[0], -IMAGE_MEAN[0] / IMAGE_STD[0], rtol=1e-6)
    img = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    back = denormalize_image(normalize_image(img, mean=IMAGE_MEAN, std=IMAGE_STD), mean=IMAGE_MEAN, std=IMAGE_STD)
    np.testing.assert_array_equal(back, img)


@pytest.mark.parametrize("flip", [False, True])
def test_crop_person_marker_lands_on_affine_point(flip):
    img = np.zeros((120, 160, 3), np.uint8)
    img[40:43, 90:93] = 255  # 3x3 marker centred at (91, 41)
    crop, m = crop_person(img, np.array([80.0, 60.0]), 64.0, 15.0, 128, flip=flip)
    assert crop.shape == (128, 128, 3)
    ys, xs = np.nonzero(crop[..., 0] > 64)
    w = crop[ys, xs, 0].astype(float)
    np.testing.assert_allclose([np.average(xs, weights=w), np.average(ys, weights=w)],
                               affine_points(np.array([91.0, 41.0]), m), atol=0.3)
    plain = get_affine_transform((80.0, 60.0), 64.0, 15.0, 128)
    expect = affine_points(np.array([91.0, 41.0]), plain)
    if flip:
        expect[0] = 127 - expect[0]
    np.testing.assert_allclose(affine_points(np.array([91.0, 41.0]), m), expect, atol=1e-9)


def test_augmentation_ranges_and_reproducibility():
    cfg = AugmentConfig()
    draws = [sample_augmentation(np.random.default_rng((0, 0, i)), cfg) for i in range(2000)]
    scales = np.array([d.scale for d in draws])
    rots = np.array([d.rotation for d in draws])
    assert 0.75 <= scales.min() < 0.78 and 1.22 < scales.max() <= 1.25
    assert np.abs(rots).max() <= 30 and 0.55 < (rots != 0).mean() < 0.65
    assert 0.45 < np.mean([d.flip for d in draws]) < 0.55
    assert all(0.8 <= c <= 1.2 for d in draws for c in d.color)
    assert sample_augmentation(np.random.default_rng((0, 0, 5)), cfg) == draws[5]
    off = AugmentConfig(flip=False, rotation=0, scale_factor=0, color_jitter=0)
    assert not any(sample_augmentation(np.random.default_rng(i), off).flip for i in range(50))


def test_color_jitter_scales_rgb_channels():
    img = np.full((2, 2, 3), 100, np.uint8)
    out = color_jitter(img, (1.2, 1.0, 0.5))  # R, G, B factors on a BGR image
    assert tuple(out[0, 0]) == (50, 100, 120)


def test_augment_config_validation():
    with pytest.raises(ConfigError):
        AugmentConfig(scale_factor=-0.1)
    with pytest.raises(ConfigError):
        AugmentConfig(rotation_prob=1.5)
