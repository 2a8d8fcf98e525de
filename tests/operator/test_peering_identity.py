"""The operator names itself among its peers without asking passwd: as a uid with no
passwd entry (the chart's 65532 in any image) kopf's default identity raised KeyError and
the operator crashed at start — found when the chart first ran on a real kubelet
(tests/realnode/test_chart_on_node.py runs it as that uid for real)."""

from __future__ import annotations

import pwd

import pytest
from kopf._core.engines.peering import detect_own_id

from gentrain_operator.__main__ import ensure_peering_identity


def no_passwd_entry(uid: int) -> pwd.struct_passwd:
    raise KeyError(f"getpwuid(): uid not found: {uid}")


@pytest.fixture
def uid_without_passwd_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME", "POD_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_passwd_entry)


def test_a_replica_without_a_passwd_entry_still_has_an_identity(
    uid_without_passwd_entry: None,
) -> None:
    with pytest.raises(KeyError, match="uid not found"):
        detect_own_id(manual=False)  # kopf's default: the crash the operator pod saw
    chosen = ensure_peering_identity()
    assert detect_own_id(manual=False) == chosen != ""


def test_the_pods_name_is_the_identity_where_the_chart_gives_it(
    uid_without_passwd_entry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POD_ID", "gentrain-operator-5f6d7c49b7-p7px8")
    assert ensure_peering_identity() == "gentrain-operator-5f6d7c49b7-p7px8"
    assert detect_own_id(manual=False) == "gentrain-operator-5f6d7c49b7-p7px8"
