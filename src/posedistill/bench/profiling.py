"""Model cost: parameters, multiply-accumulates and CPU latency.

MACs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` (which counts 2 FLOPs per
multiply-accumulate of convolutions and matmuls) and reported as GMACs = FLOPs / 2 / 1e9, the unit that
Hourglass papers call "GFLOPs". Latency is the median (and 90th percentile) wall time of repeated calls after
warm-up.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import ConfigError
from ..inference.network import torch_threads
from ..models import DEFAULT_DEPTH, build_model, get_model_spec, resolve_name

__all__ = ["count_parameters", "count_gmacs", "time_call", "num_threads", "profile_models", "check_input_size"]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable and frozen parameters."""
    return sum(p.numel() for p in model.parameters())


def check_input_size(input_size: int, multiple: int = 64) -> int:
    """Validate an input side length (a positive multiple of 64 for depth-4 Hourglasses)."""
    if not isinstance(input_size, int) or input_size <= 0 or input_size % multiple:
        raise ConfigError(f"input size must be a positive multiple of {multiple}, got {input_size}")
    return input_size


@torch.no_grad()
def count_gmacs(model: nn.Module, input_size: int, *, batch: int = 1) -> float:
    """Multiply-accumulates (x 1e-9) of one forward pass at ``input_size`` x ``input_size``."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(batch, 3, input_size, input_size))
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (None: leave it); ``threads < 1`` is refused."""
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    with torch_threads(threads):
        yield


def time_call(fn: Callable[[], Any], *, repeats: int = 10, warmup: int = 3) -> dict[str, float]:
    """Median and p90 wall time in milliseconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return {"median_ms": statistics.median(times), "p90_ms": p90}


def profile_models(
    names: Sequence[str],
    *,
    input_size: int = 256,
    num_joints: int = 14,
    threads: int | None = None,
    repeats: int = 10,
    warmup: int = 3,
    latency: bool = True,
    depth: int = DEFAULT_DEPTH,
) -> list[dict[str, Any]]:
    """Parameters, GMACs and batch-1 eager CPU latency of registered models (hourglass ``depth``, default
    :data:`~posedistill.models.DEFAULT_DEPTH`).

    Returns one dict per model: ``name, stacks, channels, depthwise, params, gmacs, latency_ms, p90_ms,
    input_size, threads``.
    """
    check_input_size(input_size)
    for name in names:  # validate all names before any slow work
        resolve_name(name)
    rows = []
    with num_threads(threads):
        for name in names:
            spec = get_model_spec(name)
            model = build_model(name, num_joints=num_joints, depth=depth).eval()
            row: dict[str, Any] = {
                "name": name,
                "stacks": spec.stacks,
                "channels": spec.channels,
                "depthwise": spec.depthwise,
                "depth": depth,
                "params": count_parameters(model),
                "gmacs": count_gmacs(model, input_size),
                "latency_ms": None,
                "p90_ms": None,
                "input_size": input_size,
                "threads": torch.get_num_threads(),
            }
            if latency:
                x = torch.randn(1, 3, input_size, input_size)
                with torch.inference_mode():
                    t = time_call(lambda: model(x), repeats=repeats, warmup=warmup)
                row["latency_ms"], row["p90_ms"] = t["median_ms"], t["p90_ms"]
            rows.append(row)
    return rows
