"""Training the person finder (``posedistill train-finder``): its canvases and targets, a real short run on embedded
LSPET photos (the loss falls), exact resumption, refusals and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from posedistill.cli import main
from posedistill.data.person_canvases import PhotoBank, encode_centres, sample_canvas
from posedistill.data.splits import read_split
from posedistill.errors import ConfigError
from posedistill.models.finder import finder_from_checkpoint
from posedistill.quickstart import embedded_data_dir
from posedistill.training.finder import FinderTraining, train_finder


@pytest.fixture(scope="module")
def photos():
    return read_split("lspet", embedded_data_dir(), "1-40"), read_split("lspet", embedded_data_dir(), "501-516")


def test_centre_targets_mark_the_cell_offset_size_and_ignored_people():
    heat, weight, cells, regs = encode_centres([np.array([36.0, 20.0, 24.0, 48.0])],
                                               [np.array([90.0, 90.0, 20.0, 20.0])], 128, 8)
    assert heat.shape == (16, 16) and heat[5, 6] == 1.0 and heat.max() == 1.0  # centre (48, 44): cell (6, 5)
    assert cells == [5 * 16 + 6]
    np.testing.assert_allclose(regs[0], [0.0, 0.5, np.log(24 / 128), np.log(48 / 128)], atol=1e-6)
    assert weight[12, 12] == 0.0 and weight[0, 0] == 1.0  # around the ignored person: neither positive nor negative


def test_canvases_are_reproducible_and_their_people_lie_on_them(photos):
    bank = PhotoBank(photos[0])
    assert len(bank) == 40 and max(bank.shapes.max(axis=0)) <= 256
    a = sample_canvas(bank, 3, 128, np.random.default_rng(7))
    b = sample_canvas(bank, 3, 128, np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and a[0].shape == (128, 128, 3) and a[0].dtype == np.uint8
    rng = np.random.default_rng(0)
    for i in range(30):
        _, targets, _ = sample_canvas(bank, int(bank.people[i % len(bank.people)]), 128, rng)
        assert 1 <= len(targets) <= 2
        for x, y, w, h in targets:
            assert -1 <= x + w / 2 <= 129 and -1 <= y + h / 2 <= 129 and w > 0 and h > 0


def test_a_short_run_on_real_photos_lowers_the_loss_and_resumes_exactly(photos, tmp_path):
    train, val = photos
    settings = FinderTraining(width=8, epochs=4, batch_size=8, steps_per_epoch=10, lr=3e-3, seed=1)
    logs = []
    last = train_finder(train, val, tmp_path / "a", settings, progress=False, log=logs.append)
    epochs = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert len(epochs) == 4 and epochs[-1]["loss_heat"] < epochs[0]["loss_heat"]
    assert np.isfinite(last["val_iou"]) and 0.0 <= last["val_iou"] <= 1.0
    model = finder_from_checkpoint(tmp_path / "a" / "finder.pt")
    assert model.width == 8
    # the same run stopped after 2 epochs and resumed ends with the same weights
    def stop_after_two(line: str) -> None:  # an interruption right after epoch 2's checkpoints
        if line.startswith("epoch 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_finder(train, val, tmp_path / "b", settings, progress=False, log=stop_after_two)
    train_finder(train, val, tmp_path / "b", settings, resume=True, progress=False, log=logs.append)
    a = torch.load(tmp_path / "a" / "finder.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "finder.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="other settings"):
        train_finder(train, val, tmp_path / "b", FinderTraining(width=8, epochs=5, batch_size=8,
                                                                 steps_per_epoch=10, seed=1), resume=True,
                     progress=False, log=logs.append)
    with pytest.raises(ConfigError, match="resume it"):
        train_finder(train, val, tmp_path / "b", settings, progress=False, log=logs.append)


def test_the_command_trains_and_writes_a_loadable_finder(tmp_path):
    res = CliRunner().invoke(main, ["train-finder", "--data", str(embedded_data_dir()), "--train", "1-24",
                                    "--val", "501-508", "--out", str(tmp_path / "run"), "--width", "8",
                                    "--epochs", "1", "--steps", "2", "--batch-size", "4", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "val IoU" in res.output and finder_from_checkpoint(tmp_path / "run" / "finder.pt").width == 8
    res = CliRunner().invoke(main, ["train-finder", "--data", str(embedded_data_dir()), "--out",
                                    str(tmp_path / "bad"), "--epochs", "0"])
    assert res.exit_code == 2 and "epochs >= 1" in res.output
