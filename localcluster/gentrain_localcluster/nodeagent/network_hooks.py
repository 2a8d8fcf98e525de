"""Pod addresses: a network namespace per pod, or the host's network when that is impossible."""

from __future__ import annotations

import threading

from .. import network


class PodNetwork:
    def __init__(self, isolated: bool, host_ip: str) -> None:
        self.isolated = isolated
        self.host_ip = host_ip
        self._lock = threading.Lock()
        self._next = 2
        self._free: list[int] = []
        self._by_pod: dict[str, int] = {}

    def setup(self, pod_uid: str) -> str:
        if not self.isolated:
            return self.host_ip
        with self._lock:
            index = self._free.pop(0) if self._free else self._next
            if index == self._next:
                self._next += 1
            self._by_pod[pod_uid] = index
        return network.create_pod_network(pod_uid, index)

    def release(self, pod_uid: str) -> None:
        if not self.isolated:
            return
        network.delete_pod_network(pod_uid)
        with self._lock:
            index = self._by_pod.pop(pod_uid, None)
            if index is not None:
                self._free.append(index)

    def namespace_path(self, pod_uid: str) -> str | None:
        return str(network.namespace_path(pod_uid)) if self.isolated else None
