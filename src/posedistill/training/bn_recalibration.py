"""Re-estimate BatchNorm running statistics on training batches ("precise BN").

During training, BatchNorm normalises with each batch's statistics and keeps an exponential moving average of
them for eval mode. With a high learning rate the weights move faster than that average follows, so in eval mode
the network sees statistics of earlier weights; on inputs far from the average (heavily augmented crops with wide
padding) the mismatch shows as heatmap values far outside [0, 1]. Recomputing the statistics as an exact average
over many batches with the final weights removes the mismatch (Wu & Johnson, "Rethinking 'Batch' in BatchNorm",
2021, call this precise BN).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["recalibrate_batchnorm"]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[dict], *, max_batches: int | None = None,
                          device: torch.device | str = "cpu",
                          memory_format: torch.memory_format = torch.contiguous_format) -> int:
    """Replace every BatchNorm layer's running mean and variance by their average over ``batches`` (dicts with
    an ``"image"`` tensor, e.g. a training loader), computed with the model's current weights. The model is left
    in eval mode; returns the number of batches used."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    saved = [(m.momentum, m.training) for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches seen
        m.train()
    used = 0
    try:
        for batch in batches:
            if max_batches is not None and used >= max_batches:
                break
            model(batch["image"].to(device).contiguous(memory_format=memory_format))
            used += 1
    finally:
        for m, (momentum, _) in zip(norms, saved):
            m.momentum = momentum
        model.eval()
    if used == 0:
        raise ValueError("recalibrate_batchnorm: no batches")
    return used
