"""Several GPUs in one pod: `torchrun` starts one trainer process (rank) per GPU.

Every rank holds the same model (same seed) and draws its own batches; after each backward
pass the gradients are averaged across ranks (`average_gradients`, called by every family
through `clip_and_measure`), so the ranks stay identical, as with DistributedDataParallel.
Rank 0 alone serves metrics, evaluates and writes checkpoints; it reads the live
configuration and hands it to the others, so every rank applies the same change at the
same step. On CPU the same code runs over gloo, which is how the tests exercise it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import torch
import torch.distributed as dist

from gentrain_contract import program

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
        listen_at_pod_address()
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return current()


def listen_at_pod_address() -> None:
    """Ranks in several pods must connect to each other at their pods' addresses. gloo
    (and NCCL's bootstrap) take the address from the host name, which in a pod may resolve
    to nothing, or to loopback, which the other pods cannot reach: the interface holding
    the pod's IP (given by the operator) is named for them, unless the user named one."""
    address = os.environ.get(program.POD_IP_VARIABLE)
    if not address:
        return
    interface = interface_with(address)
    if interface is None:
        logging.getLogger("gentrain.distributed").warning(
            "no interface holds the pod address %s: gloo and NCCL choose their own", address
        )
        return
    for variable in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
        os.environ.setdefault(variable, interface)


def interface_with(address: str) -> str | None:
    """The name of the network interface holding IPv4 `address`, or None."""
    siocgifaddr = 0x8915  # Linux: an interface's IPv4 address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(probe.fileno(), siocgifaddr, request)
            except OSError:  # no IPv4 address
                continue
            if socket.inet_ntoa(reply[20:24]) == address:
                return name
    return None


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


def any_rank_each(*flags: bool) -> tuple[bool, ...]:
    """Each flag true on every rank if it is true on any, in one collective (a SIGTERM
    seen by one rank stops all at the same step, so no rank waits forever in a collective
    the others left; a configuration rank 0 saw change is taken up by all at one step)."""
    if not _active():
        return flags
    value = torch.tensor([1.0 if flag else 0.0 for flag in flags])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return tuple(bool(v > 0) for v in value.tolist())


def fingerprint(modules: Iterable[torch.nn.Module]) -> float:
    """The sum of every weight: equal on ranks that stayed identical."""
    with torch.no_grad():
        return float(sum(p.double().sum() for module in modules for p in module.parameters()))
