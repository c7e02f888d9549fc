"""experiments/make_lspet_crops.py (the crop pack of the GPU sessions): it reads as LSPET with the same person boxes
and PCK normalisation. Run with ``python -m pytest experiments/tests`` (the README's suite covers the product)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from posedistill.data.readers import read_lspet

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("make_lspet_crops", ROOT / "experiments" / "make_lspet_crops.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_lspet(root: Path, n: int, rng) -> np.ndarray:
    (root / "images").mkdir(parents=True)
    joints = np.zeros((14, 3, n))
    for k in range(n):
        h, w = rng.integers(120, 400, size=2)
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "images" / f"im{k + 1:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        joints[:, 0, k] = rng.uniform(0.2 * w, 0.8 * w, 14)
        joints[:, 1, k] = rng.uniform(0.2 * h, 0.8 * h, 14)
        joints[:, 2, k] = rng.random(14) < 0.9
        joints[[2, 9], 2, k] = 1  # the torso (PCK's norm) visible
    scipy.io.savemat(str(root / "joints.mat"), {"joints": joints})
    return joints


def test_crop_keeps_original_pixels_when_not_shrunk():
    rng = np.random.default_rng(0)  # smooth structure that lossy WebP keeps, unlike pixel noise
    image = cv2.resize(rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8), (300, 200), interpolation=cv2.INTER_CUBIC)
    tool = _tool()
    data, f, offset = tool.crop(image, np.array([150.0, 100.0]), 120.0, 1.4, 256, 100)
    piece = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert f == 1.0 and piece.shape[0] == piece.shape[1] == 168
    x0, y0 = (-offset).astype(int)

    def err(dx, dy):
        return np.abs(piece[8:-8, 8:-8].astype(int)
                      - image[y0 + dy + 8:y0 + dy + 160, x0 + dx + 8:x0 + dx + 160].astype(int)).mean()
    assert err(0, 0) < 8 and 2 * err(0, 0) < min(err(1, 0), err(0, 1), err(-1, 0), err(0, -1))
    # a large box is shrunk to max_box, keeping its centre at the crop centre
    data, f, offset = tool.crop(image, np.array([150.0, 100.0]), 512.0, 1.0, 256, 80)
    piece = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert f == pytest.approx(0.5) and piece.shape[:2] == (256, 256)
    assert f * 150.0 + offset[0] == pytest.approx(127.5)


def test_pack_reads_as_lspet_with_the_same_boxes_and_norms(tmp_path):
    rng = np.random.default_rng(1)
    _fake_lspet(tmp_path / "src", 6, rng)
    subprocess.run([sys.executable, str(ROOT / "experiments" / "make_lspet_crops.py"), "--source",
                    str(tmp_path / "src"),
                    "--out", str(tmp_path / "pack"), "--count", "6", "--chunks", "2", "--max-box", "64"],
                   check=True, capture_output=True)
    merged = tmp_path / "merged"
    (merged / "images").mkdir(parents=True)
    for chunk in sorted((tmp_path / "pack").glob("chunk*")):
        for f in chunk.rglob("*"):
            if f.is_file():
                (merged / f.relative_to(chunk)).write_bytes(f.read_bytes())
    orig, packed = read_lspet(tmp_path / "src"), read_lspet(merged)
    assert len(packed) == 6
    for a, b in zip(orig, packed):
        f = b.scale / a.scale  # the box scales with the crop, so PCK's torso norm does too
        assert b.norm == pytest.approx(a.norm * f)
        assert np.array_equal(a.visible, b.visible)
        crop = cv2.imread(str(b.image))
        assert crop is not None and crop.shape[0] == crop.shape[1]
        # the box centre sits at the crop centre (within the whole-pixel rounding)
        assert np.abs(b.center - (crop.shape[0] - 1) / 2).max() <= 1.0
