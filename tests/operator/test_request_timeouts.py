"""Every Kubernetes call the operator makes has a timeout: an API server that accepts the
connection and never answers (frozen, overloaded, a half-dead load balancer) used to hold
the calling thread for ever."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import urllib3
from kubernetes import client

from gentrain_operator import kube


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections on the loopback address and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_a_call_to_an_api_server_that_never_answers_times_out(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube, "REQUEST_TIMEOUT", (1.0, 1.0))
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{silent_server}"
    configuration.retries = False
    api = kube.TimedApiClient(configuration)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        client.CoreV1Api(api).read_namespaced_pod("p", "n")
    assert time.monotonic() - started < 10
    api.close()
