"""Runs the node agent: `python -m gentrain_localcluster.nodeagent [--gpus N]`."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from kubernetes import client, config

from ..layout import NODE_NAME, ClusterState, Layout
from ..pki import CertificateAuthority
from .agent import NodeAgent


class TimedApiClient(client.ApiClient):  # type: ignore[misc]  # the client is untyped here
    """Every call the agent makes with a timeout (a kubelet's have them too): an API server
    that stops answering must not hold a pod's supervising thread for ever."""

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        return super().call_api(
            method, url, header_params, body, post_params, _request_timeout or (5.0, 30.0)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--node-name", default=NODE_NAME)
    parser.add_argument(
        "--gpus",
        type=int,
        default=0,
        help="advertise this many nvidia.com/gpu (to test GPU scheduling)",
    )
    parser.add_argument("--log-port", type=int, default=10250)
    parser.add_argument(
        "--pod-subnet",
        type=int,
        default=0,
        help="this node's pods get 10.244.<N>.x: a second node on the same bridge takes another",
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    layout = Layout.from_environment()
    state = ClusterState.load(layout.state_file)
    ca = CertificateAuthority(layout.pki)
    serving = ca.ensure_serving(
        f"node-{args.node_name}-serving", [state.advertise_address, "127.0.0.1"]
    )
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(layout.component_kubeconfig(f"node-{args.node_name}")),
        client_configuration=configuration,
    )
    api = TimedApiClient(configuration)
    agent = NodeAgent(
        api=api,
        node_name=args.node_name,
        pods_dir=layout.pods_dir,
        host_ip=state.advertise_address,
        isolated_network=state.pod_network,
        gpus=args.gpus,
        log_port=args.log_port,
        pod_subnet=args.pod_subnet,
        tls=(serving[0], serving[1], ca.cert_path),
        apiserver=(state.advertise_address, state.apiserver_port),
    )
    agent.run()
    api.close()


if __name__ == "__main__":
    main()
