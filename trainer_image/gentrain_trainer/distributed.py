"""Several GPUs in one pod: `torchrun` starts one trainer process (rank) per GPU.

Every rank holds the same model (same seed) and draws its own batches; after each backward
pass the gradients are averaged across ranks (`average_gradients`, called by every family
through `clip_and_measure`), so the ranks stay identical, as with DistributedDataParallel.
Rank 0 alone serves metrics, evaluates and writes checkpoints; it reads the live
configuration and hands it to the others, so every rank applies the same change at the
same step. On CPU the same code runs over gloo, which is how the tests exercise it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def join() -> World:
    """Joins the process group torchrun describes in the environment (alone: no group)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return current()


def current() -> World:
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def leave() -> None:
    """Every rank done before any goes: a peer's last exchange must not meet a closed
    connection."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def end_process(code: int) -> NoReturn:
    """Ends the process with `code`. A rank of a group ends without the interpreter's
    teardown: twice, on a loaded machine, a rank aborted at exit ("terminate called
    without an active exception", SIGABRT) after both ranks had completed with the same
    weights (tests/trainer/test_distributed.py, and gpu_check's two ranks in session 16),
    once even with a barrier before destroy_process_group; it is gloo's threads being torn
    down by C++ static destructors, which `os._exit` skips. Logs are flushed first; the
    trainer has closed its history and written its termination message by then."""
    if dist.is_available() and dist.is_initialized():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Averages the gradients of `parameters` over all ranks, in one collective call."""
    if not _active():
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def from_main(value: T) -> T:
    """Rank 0's `value` on every rank."""
    if not _active():
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[no-any-return]


def any_rank(flag: bool) -> bool:
    """True on every rank if it is true on any (a SIGTERM seen by one rank stops all at
    the same step, so no rank waits forever in a collective the others left)."""
    if not _active():
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def fingerprint(modules: Iterable[torch.nn.Module]) -> float:
    """The sum of every weight: equal on ranks that stayed identical."""
    with torch.no_grad():
        return float(sum(p.double().sum() for module in modules for p in module.parameters()))
