"""`python -m gentrain_localcluster {up,down,status,logs}`: the local Kubernetes cluster."""

from __future__ import annotations

import argparse
import os
import sys

from .cluster import down, status, up
from .controlplane import SetupError
from .layout import Layout
from .processes import ComponentError, Supervisor


def main() -> None:
    parser = argparse.ArgumentParser(prog="gentrain-localcluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start etcd, the control plane and a node agent")
    start.add_argument(
        "--gpus", type=int, default=0, help="GPUs the node advertises (nvidia.com/gpu)"
    )
    start.add_argument("--keep-data", action="store_true", help="keep etcd data from the last run")
    start.add_argument(
        "--node",
        default=os.environ.get("GENTRAIN_NODE", "agent"),
        help="agent (pods as host processes; fast) or kubelet (containerd, the kubelet and "
        "kube-proxy; pods run their images); default $GENTRAIN_NODE or agent",
    )
    stop = commands.add_parser("down", help="stop everything; no process is left behind")
    stop.add_argument("--purge", action="store_true", help="also delete the state directory")
    commands.add_parser("status", help="which components run")
    logs = commands.add_parser("logs", help="the log tail of a component")
    logs.add_argument("component")
    logs.add_argument("--lines", type=int, default=50)
    args = parser.parse_args()

    layout = Layout.from_environment()
    try:
        if args.command == "up":
            up(layout, gpus=args.gpus, fresh=not args.keep_data, node=args.node)
        elif args.command == "down":
            down(layout, purge=args.purge)
        elif args.command == "status":
            states = status(layout)
            for name, pid in states.items():
                print(f"{name:26} {'running, pid ' + str(pid) if pid else 'stopped'}")
            sys.exit(0 if all(states.values()) else 1)
        elif args.command == "logs":
            print(Supervisor(layout.state_dir).log_tail(args.component, args.lines))
    except (SetupError, ComponentError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
