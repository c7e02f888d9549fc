"""Teacher heatmap cache: a student distilled from cached teacher heatmaps matches the online FPD scheme."""

import itertools
import json

import numpy as np
import pytest
import torch
import yaml

from posedistill.errors import ConfigError
from posedistill.models import build_model
from posedistill.bench.profiling import num_threads
from posedistill.quickstart import embedded_data_dir
from posedistill.training import Trainer
from posedistill.training.teacher_cache import TeacherCache, build_teacher_cache, epoch_file
from posedistill.training.teacher_files import training_dataset

from helpers import tiny_cfg as _tiny_cfg
from helpers import make_checkpoint, model_meta
from helpers import with_run


def tiny_cfg(**over):
    defaults = {"seed": 5, "data__train": "1-16", "data__val": "", "schedule__milestones": [5],
                "train__epochs": 2}
    return _tiny_cfg(**{**defaults, **over})


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    model = build_model("hg2_32")
    return make_checkpoint(path, model, model_meta(model, "hg2_32", 64))


def _losses(summary, key="loss"):
    return [row[key] for row in summary["history"]]


def test_cached_distillation_equals_online(tmp_path, teacher_ckpt):
    cfg = tiny_cfg()
    # oneDNN's convolutions round differently per batch size on AVX-512 CPUs (the epoch-2 losses then differed by
    # 1.4e-5 relative, Adam amplifying the rounding); the native kernels compute each sample alike in any batch
    with num_threads(1), torch.backends.mkldnn.flags(enabled=False):
        online = Trainer(with_run(cfg, teacher=teacher_ckpt), tmp_path / "online", progress=False).fit()
        cache32 = build_teacher_cache(teacher_ckpt, cfg, tmp_path / "c32", batch_size=5, progress=False)
        cached32 = Trainer(with_run(cfg, teacher_cache=tmp_path / "c32"), tmp_path / "cached32", progress=False).fit()
        build_teacher_cache(teacher_ckpt, cfg, tmp_path / "c16", batch_size=16, progress=False, dtype="float16")
        cached16 = Trainer(with_run(cfg, teacher_cache=tmp_path / "c16"), tmp_path / "cached16", progress=False).fit()
    assert cache32.epochs_done() == 2 and cache32.shape == (16, 14, 16, 16)
    for key in ("loss", "loss_gt", "loss_kd"):
        # float32 storage: the very heatmaps of the online teacher (other batch size and order, same samples)
        assert _losses(cached32, key) == pytest.approx(_losses(online, key), rel=1e-5, abs=0), key
        # float16 storage rounds each teacher value to 11 significant bits: the first epoch still agrees to 1e-5
        # (measured 2.5e-6); Adam's sign-like first steps then amplify the rounding (measured 0.3-1.6 % in
        # epoch 2), which is why float32 is the default
        assert _losses(cached16, key)[0] == pytest.approx(_losses(online, key)[0], rel=1e-5, abs=0), key
    # the cached heatmaps are the online teacher's on the very samples of each epoch
    ds, _ = training_dataset(cfg)
    teacher = build_model("hg2_32")
    teacher.load_state_dict(torch.load(teacher_ckpt, weights_only=True)["model"])
    teacher.eval()
    images = torch.stack([ds[(1, i)]["image"] for i in (3, 11)])
    with torch.inference_mode():
        expect = teacher(images)[-1]
    assert torch.allclose(cache32.heatmaps(1, torch.tensor([3, 11])), expect, rtol=1e-5, atol=1e-6)
    half = TeacherCache(tmp_path / "c16").heatmaps(1, [3, 11])
    # fp16 rounding of the values (relative 2**-11, absolute 2**-24 below fp16's normal range), on top of the
    # float32 differences of another batch composition allowed above (their sum is what the check can promise)
    assert torch.allclose(half, expect, rtol=2.0**-11 + 1e-5, atol=2.0**-24 + 1e-6)
    assert not torch.equal(half, expect)  # and it is rounded: not the float32 values themselves
    assert np.load(epoch_file(tmp_path / "c16", 0), mmap_mode="r").dtype == np.float16
    assert np.load(epoch_file(tmp_path / "c32", 0), mmap_mode="r").dtype == np.float32
    # the run records the cache and the teacher it came from
    resolved = yaml.safe_load((tmp_path / "cached16" / "config.yaml").read_text())
    assert resolved["run"]["teacher_cache"] == str(tmp_path / "c16")
    assert resolved["run"]["mode"] == "distill" and resolved["run"]["teacher"] == str(teacher_ckpt)


def test_mismatched_or_incomplete_cache_is_refused(tmp_path, teacher_ckpt):
    cfg = tiny_cfg(train__epochs=1)
    with num_threads(1):
        build_teacher_cache(teacher_ckpt, cfg, tmp_path / "cache", progress=False)
    cache = TeacherCache(tmp_path / "cache")
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert meta["teacher"]["arch"]["name"] == "hg2_32" and len(meta["teacher"]["sha256"]) == 64
    assert meta["num_samples"] == 16 and meta["seed"] == 5 and meta["input_size"] == 64
    cache.validate(cfg, teacher=teacher_ckpt)
    cache.validate(tiny_cfg(train__epochs=1, model__name="hg1_64", distill__alpha=0.9))  # student side is free
    for over, message in [
        ({"seed": 6}, "seed is 5 in the cache, 6 in the config"),
        ({"data__input_size": 128}, "input_size is 64 in the cache, 128"),
        ({"data__rotation": 10.0}, "augmentation is"),
        ({"data__flip": False}, "augmentation is"),
        ({"data__train": "1-12"}, "train_split is '1-16' in the cache, '1-12'"),
        ({"data__train": "2-17"}, "train_split"),
        ({"train__amp": "bf16"}, "amp is 'none'"),
        ({"distill__teacher_flip": True}, "teacher_flip is None in the cache, True"),
        ({"data__half_body_prob": 0.3}, "augmentation is"),
    ]:
        cfg_bad = tiny_cfg(train__epochs=1, **{k: v for k, v in over.items() if "__" in k})
        if "seed" in over:
            cfg_bad.seed = over["seed"]
        with pytest.raises(ConfigError, match=message):
            cache.validate(cfg_bad)
    with pytest.raises(ConfigError, match="holds 1 epochs, the run needs 3"):
        cache.validate(tiny_cfg(train__epochs=3))
    other = tmp_path / "other.pt"
    model = build_model("hg2_32")
    make_checkpoint(other, model, model_meta(model, "hg2_32", 64))
    with pytest.raises(ConfigError, match="built from another teacher"):
        cache.validate(cfg, teacher=other)
    with pytest.raises(ConfigError, match="holds a teacher cache for other settings"):
        build_teacher_cache(other, cfg, tmp_path / "cache", progress=False)
    copy = tmp_path / "copy.pt"  # the same teacher under another path: the complete cache is reused as it is
    copy.write_bytes(teacher_ckpt.read_bytes())
    assert build_teacher_cache(copy, cfg, tmp_path / "cache", progress=False).epochs_done() == 1
    # the engine refuses before training, with the same message
    with pytest.raises(ConfigError, match="seed is 5 in the cache, 7"):
        bad = tiny_cfg(train__epochs=1)
        bad.seed = 7
        Trainer(with_run(bad, teacher_cache=tmp_path / "cache"), tmp_path / "run", progress=False).fit()
    with pytest.raises(ConfigError, match="no teacher targets here"):
        TeacherCache(tmp_path)


def test_interrupted_build_resumes_at_first_missing_epoch(tmp_path, teacher_ckpt):
    cfg = tiny_cfg(train__epochs=3)
    calls: list[int] = []  # the epoch of every stored batch, both builds

    def flaky(epoch, done):
        calls.append(epoch)
        if epoch == 1 and calls.count(1) == 1:
            raise KeyboardInterrupt  # interrupted while writing epoch 1, after its first batch

    with num_threads(1):
        with pytest.raises(KeyboardInterrupt):
            build_teacher_cache(teacher_ckpt, cfg, tmp_path / "cache", progress=False, on_batch=flaky)
        assert TeacherCache(tmp_path / "cache").epochs_done() == 1
        assert not list((tmp_path / "cache").glob(".*.tmp"))  # no half-written epoch left
        first = np.load(epoch_file(tmp_path / "cache", 0)).copy()
        build_teacher_cache(teacher_ckpt, cfg, tmp_path / "cache", progress=False, on_batch=flaky)
    assert [epoch for epoch, _ in itertools.groupby(calls)] == [0, 1, 2]  # resumed at epoch 1, 0 untouched
    assert calls.count(0) == calls.count(2) and calls.count(1) == calls.count(0) + 1
    assert np.array_equal(np.load(epoch_file(tmp_path / "cache", 0)), first)
    assert TeacherCache(tmp_path / "cache").epochs_done() == 3


def test_distill_cli_builds_and_uses_the_cache(tmp_path, teacher_ckpt):
    from click.testing import CliRunner

    from posedistill.cli import main

    args = ["--set", f"data.root={embedded_data_dir()}", "--set", "data.train=1-16", "--set", "data.val=",
            "--set", "data.input_size=64", "--set", "data.workers=0", "--model", "hg1_32", "--epochs", "1",
            "--batch-size", "8", "--no-progress", "--device", "cpu"]
    runner = CliRunner()
    with num_threads(1):
        result = runner.invoke(main, ["distill", *args, "--out", str(tmp_path / "a"), "--teacher", str(teacher_ckpt),
                                      "--teacher-cache", str(tmp_path / "cache")])
        assert result.exit_code == 0, result.output
        assert TeacherCache(tmp_path / "cache").epochs_done() == 1
        result = runner.invoke(main, ["distill", *args, "--out", str(tmp_path / "b"), "--alpha", "0.9",
                                      "--teacher-cache", str(tmp_path / "cache")])
        assert result.exit_code == 0, result.output
        result = runner.invoke(main, ["distill", *args, "--out", str(tmp_path / "c")])
    assert result.exit_code != 0 and "--teacher-cache" in result.output
    resolved = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert resolved["run"]["teacher_cache"] == str(tmp_path / "cache") and resolved["distill"]["alpha"] == 0.9


def test_cache_meta_records_negatives_only_when_used():
    """Caches written before data.augment.negative_prob existed still match (the key is left out at 0); a
    cache of negatives differs from one without."""
    from posedistill.training.teacher_cache import cache_meta

    metas = {}
    for p in (0.0, 0.2):
        cfg = tiny_cfg(data__augment={"negative_prob": p})
        dataset, joint_set = training_dataset(cfg, stride=4)
        metas[p] = cache_meta(cfg, dataset, joint_set)["augmentation"]
    assert "negative_prob" not in metas[0.0] and metas[0.2]["negative_prob"] == 0.2
    assert {k: v for k, v in metas[0.2].items() if k != "negative_prob"} == metas[0.0]
