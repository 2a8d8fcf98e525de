"""The launcher's failure handling: a port in use, a stale state directory from a killed
run, and a crashed component reported with its log tail.

Each test runs its own etcd and API server (no node agent, no pod network) in a temporary
state directory on a free port, beside the session's cluster."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gentrain_localcluster import controlplane
from gentrain_localcluster.layout import Layout
from gentrain_localcluster.processes import ComponentError, Supervisor, free_port
from tests.support.kube import REPO

pytestmark = pytest.mark.cluster

TOOLS = REPO / ".tools" / "bin"


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Layout]:
    if not (TOOLS / "kube-apiserver").exists():
        pytest.skip("needs the control-plane binaries (make setup)")
    monkeypatch.setenv("GENTRAIN_APISERVER_PORT", str(free_port()))
    here = Layout(state_dir=tmp_path / "cluster", tools_bin=TOOLS)
    yield here
    controlplane.stop(Supervisor(here.state_dir))


def test_a_port_in_use_is_reported_with_what_to_do(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("GENTRAIN_APISERVER_PORT", str(port))
        with pytest.raises(controlplane.SetupError) as error:
            controlplane.start(layout, Supervisor(layout.state_dir), pod_network=False)
    assert f"port {port}" in str(error.value)
    assert "GENTRAIN_APISERVER_PORT" in str(error.value)
    assert (
        not list((layout.state_dir / "pids").glob("*.pid"))
        if (layout.state_dir / "pids").exists()
        else True
    )


def test_stale_state_from_a_killed_run_is_recovered(layout: Layout) -> None:
    supervisor = Supervisor(layout.state_dir)
    controlplane.start(layout, supervisor, pod_network=False)
    pids = {name: supervisor.pid(name) for name in controlplane.COMPONENTS}
    for pid in pids.values():
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # they are this process's children: reap them
    # The pid files are still there, naming dead processes, as after `kill -9` of a run.
    assert all(supervisor.pid_file(name).exists() for name in pids)
    state = controlplane.start(layout, supervisor, pod_network=False)
    assert state.apiserver_port == int(os.environ["GENTRAIN_APISERVER_PORT"])
    assert all(supervisor.pid(name) not in (None, pids[name]) for name in pids)


def test_a_crashed_component_is_reported_with_its_log_tail(layout: Layout) -> None:
    supervisor = Supervisor(layout.state_dir)
    controlplane.start(layout, supervisor, pod_network=False)
    etcd = supervisor.pid("etcd")
    assert etcd is not None
    os.killpg(etcd, signal.SIGKILL)
    os.waitpid(etcd, 0)
    with pytest.raises(ComponentError) as error:
        supervisor.check_alive("etcd")
    assert "etcd exited" in str(error.value)
    assert str(supervisor.log_file("etcd")) in str(error.value)
