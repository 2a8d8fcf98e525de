"""Readiness, liveness and startup probes: httpGet, tcpSocket and exec."""

from __future__ import annotations

import http.client
import socket
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any


def _port(value: int | str, container: Mapping[str, Any]) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"probe names port {value!r}, which the container does not declare")


def run_probe(
    probe: Mapping[str, Any],
    pod_ip: str,
    container: Mapping[str, Any],
    exec_context: tuple[Sequence[str], Mapping[str, str]] | None,
) -> bool:
    """One probe's answer. An exec probe runs in `exec_context` (the container's
    namespaces and environment: Container.exec_context); it fails while there is none."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            spec = probe["httpGet"]
            connection_class = (
                http.client.HTTPSConnection
                if spec.get("scheme") == "HTTPS"
                else http.client.HTTPConnection
            )
            connection = connection_class(
                spec.get("host") or pod_ip, _port(spec["port"], container), timeout=timeout
            )
            try:
                connection.request("GET", spec.get("path", "/"))
                return 200 <= connection.getresponse().status < 400
            finally:
                connection.close()
        if "tcpSocket" in probe:
            spec = probe["tcpSocket"]
            with socket.create_connection(
                (spec.get("host") or pod_ip, _port(spec["port"], container)), timeout=timeout
            ):
                return True
        if "exec" in probe:
            if exec_context is None:
                return False
            prefix, env = exec_context
            result = subprocess.run(
                [*prefix, *probe["exec"]["command"]],
                capture_output=True,
                timeout=timeout,
                check=False,
                env=dict(env),
            )
            return result.returncode == 0
    except (OSError, ValueError, subprocess.TimeoutExpired, http.client.HTTPException):
        return False
    return True


class ProbeState:
    """Counts successes and failures against the probe's thresholds."""

    def __init__(self, probe: Mapping[str, Any] | None, initially: bool) -> None:
        self.probe = probe
        self.passing = initially if probe is not None else True
        self.successes = 0
        self.failures = 0
        self.last_run = 0.0
        self.started_at = 0.0

    def due(self, now: float) -> bool:
        if self.probe is None:
            return False
        if now - self.started_at < float(self.probe.get("initialDelaySeconds", 0)):
            return False
        return now - self.last_run >= float(self.probe.get("periodSeconds", 10))

    def record(self, ok: bool, now: float) -> None:
        assert self.probe is not None
        self.last_run = now
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.probe.get("successThreshold", 1)):
                self.passing = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= int(self.probe.get("failureThreshold", 3)):
                self.passing = False
