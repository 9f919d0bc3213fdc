"""Data-parallel training under ``torchrun``: process group setup and small collective helpers.

``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK; when WORLD_SIZE > 1 the trainer joins a
process group (NCCL for CUDA devices, gloo for CPU), shards the data with a per-rank sampler,
wraps its trainable modules in DistributedDataParallel, and lets rank 0 alone write logs,
samples and checkpoints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def info_from_env() -> DistInfo:
    """Read the torchrun environment; a plain ``python`` run is rank 0 of 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid torchrun environment: RANK={rank}, WORLD_SIZE={world_size}")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def parse_device(requested: str) -> torch.device:
    """torch.device(requested), with a ValueError naming the option for a string that is no device."""
    try:
        return torch.device(requested)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device={requested!r} is not a device (cpu, cuda, cuda:N, ...): {error}") from None


def pick_device(requested: str, info: DistInfo) -> torch.device:
    """``auto`` means the process's own GPU when there is one, else the CPU."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", info.local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    device = check_cuda_device(parse_device(requested), requested)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", info.local_rank % torch.cuda.device_count())
    return device


def check_cuda_device(device: torch.device, requested: str) -> torch.device:
    """A CUDA device that this machine has; otherwise a ValueError naming the option (torch itself
    would fail only at the first tensor moved there, deep inside model setup)."""
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise ValueError(f"device={requested!r} but CUDA is not available")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ValueError(f"device={requested!r} but this machine has {count} CUDA device{'s' if count > 1 else ''} "
                         f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    return device


def init_process_group(info: DistInfo, device: torch.device) -> None:
    if not info.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's parameters and buffers (for modules DDP does not wrap, e.g. EMA)."""
    if not info.enabled:
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def all_ranks_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Logical AND over ranks (e.g. "all losses finite"), so every rank stops together."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0.5)


def any_rank_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0.5)


def gather_to_main(obj: Any, info: DistInfo) -> list[Any] | None:
    """Every rank's picklable ``obj``, in rank order, on rank 0 (None on the others); collective.

    Tensors in it should be on the CPU: rank 0 unpickles them where they were, another rank's GPU
    included."""
    if not info.enabled:
        return [obj]
    gathered = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def on_cpu(obj: Any) -> Any:
    """``obj`` with every tensor in its dicts, lists and tuples copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {key: on_cpu(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(on_cpu(value) for value in obj)
    return obj


def wrap_ddp(module: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    # buffers (BatchNorm statistics) follow rank 0 at every forward: DDP's default
    return DistributedDataParallel(module, device_ids=device_ids)
