"""Shared test helpers (imported by test modules; pytest puts this folder on sys.path)."""

from posedistill.config import config_from_dict
from posedistill.quickstart import embedded_data_dir


def tiny_cfg(**over):
    """A tiny experiment on the embedded LSPET images (hg1_32, 64x64 input); ``section__key=value`` (or ``seed=...``) overrides."""
    cfg = {
        "seed": 3,
        "model": {"name": "hg1_32"},
        "data": {"dataset": "lspet", "root": str(embedded_data_dir()), "train": "1-24", "val": "501-516",
                 "input_size": 64, "workers": 0},
        "optim": {"lr": 1e-3},
        "schedule": {"milestones": [2]},
        "train": {"epochs": 3, "batch_size": 8},
    }
    for key, value in over.items():
        if "__" not in key:  # top-level keys: seed, name
            cfg[key] = value
            continue
        section, name = key.split("__")
        cfg.setdefault(section, {})[name] = value
    return config_from_dict(cfg)


def make_checkpoint(path, model, meta, **extra):
    """Save ``model`` as the engine does, with its pixel record ``meta`` (a
    :class:`~posedistill.models.meta.ModelMeta`): the checkpoint's ``arch``, ``joint_set``, ``input_size`` and
    ``sigma`` come from them, ``model_meta`` is the record; ``extra`` keys (config, optimizer, ...) are added.
    Tests that mean the legacy branch (files written before the record existed) write their dicts by hand."""
    from posedistill.models.checkpoint import save_checkpoint
    from posedistill.training.run_dir import arch_record

    save_checkpoint(path, {"arch": arch_record(meta.arch, meta.num_joints, int(model.depth)),
                           "joint_set": meta.joint_set, "input_size": meta.input_size, "sigma": meta.sigma,
                           "model_meta": meta.to_dict(), "model": model.state_dict(), **extra})
    return path


def model_meta(model, name, input_size, *, joint_set="lsp", sigma=2.0):
    """The record the engine writes for ``model`` (registry ``name``) trained at ``input_size``."""
    from posedistill.models.meta import ModelMeta

    return ModelMeta.for_model(model, arch=name, joint_set=joint_set, input_size=input_size, sigma=sigma)


def pixels(joint_set="lsp", input_size=256, *, sigma=2.0):
    """The pixel record (:class:`~posedistill.models.meta.ModelMeta`) of an Hourglass of ``input_size``: what a
    :class:`~posedistill.data.PoseDataset` makes its crops and targets for."""
    from posedistill.models import STRIDE
    from posedistill.models.meta import ModelMeta

    return ModelMeta.for_pixels(joint_set, input_size, stride=STRIDE, sigma=sigma)


def with_run(cfg, **run):
    """``cfg`` with run inputs (``teacher=...``, ``teacher_cache=...``, ``init=...``; paths as strings)."""
    import dataclasses

    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, **{k: str(v) for k, v in run.items()}))


def assert_fault_stops_before_last_pt(cfg, run, hook, match):
    """Train ``cfg`` one epoch into ``run``, resume with the ``on_built`` fault ``hook``: the run must raise
    TrainingError matching ``match`` and leave ``last.pt`` (epoch 1, same weights) untouched."""
    import pytest
    import torch

    from posedistill.models.checkpoint import load_checkpoint
    from posedistill.training import Trainer, TrainingError

    Trainer(cfg, run, progress=False).fit(stop_after=1)
    good = load_checkpoint(run / "last.pt")
    with pytest.raises(TrainingError, match=match):
        Trainer(cfg, run, resume=True, progress=False).fit(on_built=hook)
    after = load_checkpoint(run / "last.pt")
    assert after["epoch"] == good["epoch"] == 1
    assert all(torch.equal(after["model"][k], good["model"][k]) for k in good["model"])


def write_manifest(folder, students, *, default=None, teacher=None):
    """A shipped-weights manifest (``default.json``, :mod:`posedistill.models.pretrained`) in ``folder`` naming
    ``students`` (``{name: file or (checkpoint, onnx) files}``) and an optional ``teacher`` file, each with its
    sha256."""
    import json
    from pathlib import Path

    from posedistill.models.pretrained import MANIFEST_FORMAT, manifest_entry

    folder = Path(folder)

    def entry(files):
        pt, onnx = (files, None) if isinstance(files, str) else files
        return manifest_entry(folder, pt, **({"onnx": manifest_entry(folder, onnx)} if onnx else {}))

    info = {"format": MANIFEST_FORMAT, "version": 2, "default": default or next(iter(students)),
            "students": {name: entry(files) for name, files in students.items()}}
    if teacher is not None:
        info["teacher"] = entry(teacher)
    (folder / "default.json").write_text(json.dumps(info))
    return folder / "default.json"
