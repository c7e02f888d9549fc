"""Training precision: what ``train.amp`` means on this machine and the autocast context for it.

Shared by the engine (student and online teacher) and the teacher cache builder, so a cached teacher runs
under exactly the precision the online teacher would.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from ..errors import ConfigError

__all__ = ["cpu_has_fast_bf16", "resolve_amp", "autocast"]


def cpu_has_fast_bf16() -> bool:
    """True when this CPU runs bf16 matrix work natively (AVX-512-BF16 or AMX). On AVX2-only CPUs bf16 autocast
    is emulated: measured 11x slower than fp32 for hg4_128 training (docs/training.md)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_amp(setting: str, device: torch.device) -> str:
    """The autocast precision to train with: ``auto`` becomes ``bf16`` on a CUDA GPU with bf16 or a CPU with
    native bf16 (:func:`cpu_has_fast_bf16`), else ``none`` (fp32); other settings are returned as they are."""
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "none"
    return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "none"


def autocast(amp: str, device: torch.device) -> AbstractContextManager:
    """The autocast context of a resolved precision (``none``, ``bf16`` or ``fp16``; fp16 needs CUDA)."""
    if amp == "none":
        return nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp=fp16 needs CUDA; use bf16 on the CPU")
    if amp not in ("bf16", "fp16"):
        raise ConfigError(f"train.amp must be resolved to none, bf16 or fp16, got {amp!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
