"""torch.distributed helpers: DDP launched by ``torchrun`` (multi-GPU / multi-node), single process otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistInfo", "init_distributed", "all_reduce_mean", "parameter_spread", "barrier", "cleanup"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); pick the device.

    Backend: NCCL on CUDA, gloo on CPU. ``device`` None: the local GPU when available, else the CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN time its algorithms once
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def all_reduce_mean(values: list[float], info: DistInfo) -> list[float]:
    """Average a list of floats over all ranks (identity without distribution)."""
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return (t / info.world_size).tolist()


@torch.no_grad()
def parameter_spread(model: nn.Module, info: DistInfo) -> float:
    """Largest difference across ranks of a checksum of the parameters (0.0 when the replicas agree)."""
    if not info.enabled:
        return 0.0
    flat = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64, device=flat.device).remainder_(97).add_(1)
    checksum = (flat * weights).sum().reshape(1)
    gathered = [torch.zeros_like(checksum) for _ in range(info.world_size)]
    dist.all_gather(gathered, checksum)
    values = torch.cat(gathered)
    return float(values.max() - values.min())


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
