"""The readiness probe of each pod of a job of several pods: Ready while the pod reaches
rank 0's rendezvous (torchrun's store, at PET_MASTER_ADDR:PET_MASTER_PORT) from its own
network. A pod that cannot (a NetworkPolicy between the pods, a name cluster DNS does not
resolve, a node with no route) stays not Ready, and the operator names it when the gang
has not come together in time.

Only the standard library: a probe runs every few seconds, and importing torch would
cost seconds of CPU each time. The store takes a bare connection and its close."""

from __future__ import annotations

import os
import socket
import sys

from gentrain_contract.program import RENDEZVOUS_PORT

CONNECT_SECONDS = 2.0


def reachable(address: str, port: int) -> str | None:
    """None when rank 0's rendezvous answers at address:port; else why not."""
    try:
        socket.create_connection((address, port), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        return f"rank 0's rendezvous at {address}:{port} is unreachable: {error}"
    return None


def main() -> int:
    address = os.environ.get("PET_MASTER_ADDR")
    if not address:
        print("PET_MASTER_ADDR is not set: not a pod of a job of several pods", file=sys.stderr)
        return 1
    why = reachable(address, int(os.environ.get("PET_MASTER_PORT", RENDEZVOUS_PORT)))
    if why is not None:
        print(why, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
