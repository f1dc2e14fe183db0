"""Multi-GPU and multi-node training with PyTorch's own engine: torchrun + DistributedDataParallel.

Launch the unchanged CLI under torchrun, e.g. on one machine with 4 GPUs:

    torchrun --nproc_per_node=4 -m edn_server.cli train target.mp4 --name anna --preset paper

and on two machines (run on each, same rendezvous address; EDN_HOME on a shared file system so
every rank finds the model folder when resuming):

    torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=HOST:29400 -m edn_server.cli train ...

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them training runs in one process.
NCCL on CUDA, gloo on the CPU. Every rank trains on its own slice of each global batch
(dataset.PairSampler), DDP averages the gradients, and only rank 0 writes checkpoints, samples
and the finished model. `--steps` counts optimiser steps, the same on every rank.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from ..errors import INTERNAL, EdnError

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_from_os() -> DistEnv:
    """The rank layout torchrun put in the environment (one process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistEnv(rank=int(os.environ.get("RANK", "0")), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(requested: str | torch.device | None, env: DistEnv) -> torch.device:
    """`requested`, else CUDA when available; under torchrun each process takes GPU LOCAL_RANK."""
    device = torch.device(requested) if requested is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            from ..errors import BAD_PARAMS

            raise EdnError(BAD_PARAMS, "--device cuda was asked for, but PyTorch sees no CUDA GPU here; use --device cpu.")
        if env.enabled or device.index is None:
            device = torch.device("cuda", env.local_rank if env.enabled else torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


def init(env: DistEnv, device: torch.device) -> bool:
    """Join the process group (NCCL for CUDA, gloo otherwise). True when this call created it."""
    if not env.enabled or dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=env.rank, world_size=env.world_size,
                            device_id=device if device.type == "cuda" else None)
    return True


def shutdown(created: bool) -> None:
    if created and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, env: DistEnv, device: torch.device) -> nn.Module:
    """DDP around `module` in a distributed run (it broadcasts rank 0's weights at construction)."""
    if not env.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def any_rank(flags: list[bool], env: DistEnv, device: torch.device) -> list[bool]:
    """Each flag is true on every rank when it is true on any (time up, cancelled), so all ranks
    stop or switch stage at the same step."""
    if not env.enabled:
        return flags
    tensor = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(v) for v in tensor.tolist()]


def main_first(fn: Callable[[], T], env: DistEnv, then_others: bool = True) -> T | None:
    """Run `fn` on rank 0, then (with then_others) on the other ranks, e.g. build a cache once and
    read it everywhere. An error on rank 0 is raised on every rank, so none waits forever."""
    if not env.enabled:
        return fn()
    failure: list = [None]
    result = None
    if env.is_main:
        try:
            result = fn()
        except Exception as error:
            failure = [(getattr(error, "code", INTERNAL), getattr(error, "message", f"{type(error).__name__}: {error}"))]
            dist.broadcast_object_list(failure, src=0)
            raise
    dist.broadcast_object_list(failure, src=0)
    if failure[0] is not None:
        raise EdnError(failure[0][0], f"rank 0 failed: {failure[0][1]}")
    if env.is_main:
        return result
    return fn() if then_others else None
