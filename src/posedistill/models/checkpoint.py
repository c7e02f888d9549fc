"""Checkpoints: one dict per file, written atomically, read with ``torch.load(weights_only=True)``.

Layout (all plain containers and tensors, so the safe unpickler can read them)::

    {"format": "posedistill-checkpoint", "version": 1,
     "arch": {"name": "hg4_128", "num_joints": 14},      # registry name + builder kwargs
     "joint_set": "lsp", "input_size": 256, "sigma": 2.0,
     "model_meta": {...},                                 # posedistill.models.meta.ModelMeta (newer files)
     "model": state_dict, "optimizer": ..., "scheduler": ..., "epoch": int, "rng": {...},
     "config": {...}, "metrics": {...}}

Only ``arch``, ``joint_set``, ``input_size`` and ``model`` are needed for inference; ``model_meta`` (or, in older
files, ``sigma``) tells how to decode (:func:`posedistill.models.loading.load_pose_model`).
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..io import atomic_open
from .hourglass import DEFAULT_DEPTH
from .registry import build_model

__all__ = ["save_checkpoint", "save_atomic", "safe_load", "load_checkpoint", "model_from_checkpoint",
           "slim_checkpoint", "standalone_weights", "FORMAT"]

#: What a deployed checkpoint keeps (:func:`slim_checkpoint`): enough to run, and to tell where it came from.
DEPLOY_KEYS = ("arch", "joint_set", "input_size", "sigma", "model_meta", "model", "epoch", "config", "best_val_pck")

FORMAT = "posedistill-checkpoint"


def save_checkpoint(path: str | os.PathLike, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` (a dict with at least arch, joint_set, input_size, model) atomically."""
    missing = {"arch", "joint_set", "input_size", "model"} - checkpoint.keys()
    if missing:
        raise ValueError(f"checkpoint lacks {sorted(missing)}")
    save_atomic(path, {"format": FORMAT, "version": 1, **checkpoint})


def save_atomic(path: str | os.PathLike, payload: Any) -> None:
    """``torch.save`` of ``payload`` to a temporary file renamed over ``path`` (any weights file: a pose
    checkpoint through :func:`save_checkpoint`, the person finder's files)."""
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def safe_load(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` of any weights file (never executes code from it); one clear
    :class:`CheckpointError` naming the file for a missing, refused, corrupt or truncated one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # never quote PyTorch's message: its advice (load again with weights_only=False) is the attack itself
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (it asks for {named.group(1)})" if named else ""
        raise CheckpointError(f"{path}: refused to load: not a plain-weights checkpoint{what}; it will not "
                              "be loaded") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, AttributeError,
            IndexError, TypeError, UnicodeDecodeError, MemoryError, OverflowError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(exc).__name__})") from exc
    return ckpt


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a posedistill pose checkpoint safely (:func:`safe_load`) and check its layout; one clear error for
    any bad file."""
    path = Path(path)
    ckpt = safe_load(path, map_location=map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a posedistill checkpoint")
    for key in ("arch", "joint_set", "input_size", "model"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")
    arch, size = ckpt["arch"], ckpt["input_size"]
    if (not isinstance(arch, dict) or not isinstance(arch.get("name"), str)
            or not isinstance(arch.get("num_joints"), int) or isinstance(arch.get("num_joints"), bool)
            or arch["num_joints"] < 1):
        raise CheckpointError(f"{path}: malformed 'arch' (expected {{'name': str, 'num_joints': int >= 1}})")
    depth = arch.get("depth", DEFAULT_DEPTH)
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 6:
        raise CheckpointError(f"{path}: malformed 'arch' depth {depth!r} (expected an integer in 1..6)")
    if not isinstance(ckpt["joint_set"], str):
        raise CheckpointError(f"{path}: malformed 'joint_set' (expected a name such as 'lsp')")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise CheckpointError(f"{path}: malformed 'input_size' (expected an integer >= 1)")
    model = ckpt["model"]
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        raise CheckpointError(f"{path}: malformed 'model' (expected a state dict of tensors)")
    return ckpt


def model_from_checkpoint(
    source: str | os.PathLike | dict[str, Any],
    *,
    expect_arch: str | None = None,
    expect_joint_set: str | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the checkpoint's model and load its weights; returns ``(model in eval mode, checkpoint)``.

    ``expect_arch`` / ``expect_joint_set`` turn a mismatch into a clear :class:`CheckpointError`.
    """
    ckpt = source if isinstance(source, dict) else load_checkpoint(source, map_location=map_location)
    where = "checkpoint" if isinstance(source, dict) else str(source)
    arch = ckpt["arch"]
    if expect_arch is not None and arch.get("name") != expect_arch:
        raise CheckpointError(f"{where}: checkpoint is for model {arch.get('name')!r}, expected {expect_arch!r}")
    if expect_joint_set is not None and ckpt["joint_set"] != expect_joint_set:
        raise CheckpointError(
            f"{where}: checkpoint is for joint set {ckpt['joint_set']!r}, expected {expect_joint_set!r}"
        )
    try:
        model = build_model(arch["name"], num_joints=int(arch["num_joints"]),
                            depth=int(arch.get("depth", DEFAULT_DEPTH)))
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{where}: weights do not fit model {arch.get('name')!r} ({first})") from exc
    return model.eval(), ckpt


def standalone_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a state dict whose tensors own their storage, so that a saved file holds only these tensors and
    not storages they share with others (a loaded checkpoint's weights share one with its optimiser state)."""
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def slim_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, *,
                    provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a deployable copy of the training checkpoint ``src`` to ``dst`` (atomically): the model's weights,
    architecture, joint set, input size, resolved config and best validation PCK, without optimiser, scheduler,
    RNG state or history; ``provenance`` (plain JSON-like values, e.g. test PCK and the commands) is stored
    under ``"provenance"``. Returns the written dict."""
    ckpt = load_checkpoint(src)
    slim = {key: ckpt[key] for key in DEPLOY_KEYS if key in ckpt}
    slim["model"] = standalone_weights(ckpt["model"])
    if provenance is not None:
        slim["provenance"] = provenance
    save_checkpoint(dst, slim)
    return slim
