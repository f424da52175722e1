"""Training on several processes: `torchrun --nproc_per_node N -m train ...` starts N copies of the same command,
each told its rank in the environment (RANK, WORLD_SIZE, LOCAL_RANK). They join one process group (NCCL on GPUs,
gloo on CPUs), wrap the model in DistributedDataParallel (gradients averaged over ranks every step, so every rank
holds the same weights), draw their own crops (seeded by seed + rank), and rank 0 alone writes the log, the state
and the export. A plain `python -m train` is a world of one rank and touches none of this.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from train.runs import pick_device


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # the rank among the processes on this machine: which GPU it drives

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @staticmethod
    def from_env() -> Ranks:
        """What torchrun sets; a process started without it is a world of one."""
        env = os.environ
        return Ranks(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))

    def device(self, name: str) -> torch.device:
        """The device this rank trains on: its own GPU (LOCAL_RANK) when the run uses GPUs."""
        dev = pick_device(name)
        return torch.device("cuda", self.local_rank) if self.distributed and dev.type == "cuda" else dev


SINGLE = Ranks()  # a plain `python -m train`


@contextmanager
def process_group(device_name: str) -> Iterator[Ranks]:
    """Join torchrun's process group for the duration (NCCL on GPUs, gloo on CPUs); a single process joins none."""
    ranks = Ranks.from_env()
    if not ranks.distributed:
        yield ranks
        return
    cuda = ranks.device(device_name).type == "cuda"
    if cuda:
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield ranks
    finally:
        dist.destroy_process_group()


class DataParallel(DistributedDataParallel):
    """DistributedDataParallel that reads attributes it lacks (config, key, ...) from the wrapped model, so an
    engine's loss takes it just like the model itself."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def wrap(model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """The model as the training step calls it: DDP-wrapped across ranks (rank 0's weights copied to every rank
    here), or the model itself in a world of one. No buffer is trained, so buffers are not re-sent every step."""
    if not ranks.distributed:
        return model
    return DataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                        forward_sync_buffers=False)


def any_rank(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """True on every rank when `flag` is True on any: ranks must stop at the same step, or one would wait forever
    for the others' gradients."""
    if not ranks.distributed:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather(obj: Any, ranks: Ranks) -> list[Any]:
    """Every rank's `obj`, in rank order (a collective: every rank must call it)."""
    if not ranks.distributed:
        return [obj]
    out: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        dist.barrier()
