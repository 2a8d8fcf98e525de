"""The Helm chart: lint, render with several value sets, the schema refuses typos, the
alerts pass promtool's checks and unit tests, and every metric a dashboard or alert reads
exists in the trainer's or the operator's registry."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gentrain_contract.metrics import BY_NAME
from tests.support.kube import REPO

CHART = REPO / "helm" / "gentrain"
BIN = REPO / ".tools" / "bin"
VALUE_SETS = {
    "defaults": [],
    "namespaced": ["--set", "operator.scope=namespace"],
    "everything": [
        "--set",
        "alerts.enabled=true,dashboards.enabled=true,metrics.serviceMonitor.enabled=true,"
        "metrics.podMonitor.enabled=true,operator.replicas=2",
    ],
    "no-crd-one-alert-off": [
        "--set",
        "crds.enabled=false,alerts.enabled=true,alerts.disabled.OperatorDown=true",
    ],
}


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is built by `make setup`")
    return str(path)


def helm(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("helm"), *args], capture_output=True, text=True, check=check, timeout=timeout
    )


def render(*args: str) -> list[dict]:
    out = helm("template", "t", str(CHART), "--namespace", "gentrain", *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_lint() -> None:
    assert "0 chart(s) failed" in helm("lint", str(CHART)).stdout


@pytest.mark.parametrize("name", VALUE_SETS)
def test_renders(name: str) -> None:
    kinds = [d["kind"] for d in render(*VALUE_SETS[name])]
    assert "Deployment" in kinds and "ServiceAccount" in kinds
    assert ("CustomResourceDefinition" in kinds) == (name != "no-crd-one-alert-off")


def test_the_chart_crd_is_the_repositorys() -> None:
    [crd] = [d for d in render() if d["kind"] == "CustomResourceDefinition"]
    assert crd == yaml.safe_load(
        (REPO / "crds" / "generativetrainingjobs.gentrain.io.yaml").read_text()
    )
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_a_typo_in_values_fails_the_install() -> None:
    result = helm("template", "t", str(CHART), "--set", "operator.replica=2", check=False)
    assert result.returncode != 0 and "additional properties 'replica' not allowed" in result.stderr


def test_the_operator_runs_locked_down() -> None:
    [deployment] = [d for d in render() if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    rules = next(d for d in render() if d["kind"] == "ClusterRole")["rules"]
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert ("", "secrets") not in granted and ("", "pods/exec") not in granted
    namespaced = render(*VALUE_SETS["namespaced"])
    assert not [d for d in namespaced if d["kind"].startswith("Cluster")]


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    [rule] = [d for d in render(*VALUE_SETS["everything"]) if d["kind"] == "PrometheusRule"]
    directory = tmp_path_factory.mktemp("rules")
    (directory / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    # promtool's unit tests compare annotations too; they are checked on their own below,
    # so the tested copy carries none and the tests state only labels.
    bare = yaml.safe_load(yaml.safe_dump(rule["spec"]))
    for alert in bare["groups"][0]["rules"]:
        alert.pop("annotations")
    (directory / "bare.yaml").write_text(yaml.safe_dump(bare))
    shutil.copy(REPO / "tests" / "chart" / "alerts-test.yaml", directory / "alerts-test.yaml")
    return directory


def test_promtool_checks_the_rules(rules: Path) -> None:
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(rules / "rules.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 rules found" in result.stdout


def promtool_test(directory: Path, test_file: str) -> None:
    """Runs promtool's unit tests of one file; fails with what promtool said."""
    result = subprocess.run(
        [tool("promtool"), "test", "rules", test_file],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_when_it_should_and_not_on_a_healthy_job(rules: Path) -> None:
    promtool_test(rules, "alerts-test.yaml")


def test_every_alert_can_be_disabled_and_links_its_runbook() -> None:
    [rule] = [d for d in render(*VALUE_SETS["everything"]) if d["kind"] == "PrometheusRule"]
    alerts = rule["spec"]["groups"][0]["rules"]
    runbooks = (REPO / "docs" / "runbooks.md").read_text()
    headings = {
        line[3:].strip().lower() for line in runbooks.splitlines() if line.startswith("## ")
    }
    for alert in alerts:
        annotations = alert["annotations"]
        assert annotations.get("summary") and annotations.get("description"), alert["alert"]
        page, anchor = annotations["runbook_url"].split("#")
        assert page.endswith("/docs/runbooks.md") and anchor in headings, alert["alert"]
    names = [a["alert"] for a in alerts]
    for name in names:
        [smaller] = [
            d
            for d in render("--set", f"alerts.enabled=true,alerts.disabled.{name}=true")
            if d["kind"] == "PrometheusRule"
        ]
        assert name not in [a["alert"] for a in smaller["spec"]["groups"][0]["rules"]]


def operator_metric_names() -> set[str]:
    from prometheus_client import REGISTRY

    import gentrain_operator.metrics  # noqa: F401 - registers them

    names = set()
    for family in REGISTRY.collect():
        for sample in family.samples:
            names.add(sample.name)
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    histograms = {n for n in names if n.startswith("gentrain_operator_") and n.endswith("_seconds")}
    return names | {f"{h}_{suffix}" for h in histograms for suffix in ("bucket", "sum", "count")}


def test_every_metric_in_dashboards_and_alerts_exists() -> None:
    known = set(BY_NAME) | operator_metric_names() | {"up"}
    texts = [p.read_text() for p in (CHART / "files" / "dashboards").glob("*.json")]
    [rule] = [d for d in render(*VALUE_SETS["everything"]) if d["kind"] == "PrometheusRule"]
    texts += [a["expr"] for a in rule["spec"]["groups"][0]["rules"]]
    used = {m for text in texts for m in re.findall(r"\b(gentrain_[a-z_]+|up)\b", text)}
    assert used, "no metric found"
    assert used <= known, f"unknown metrics: {sorted(used - known)}"
    for path in (CHART / "files" / "dashboards").glob("*.json"):
        json.loads(path.read_text())


@pytest.mark.parametrize("scope", ["cluster", "namespace"])
def test_one_replica_still_peers_so_a_scaled_deployment_acts_once(scope: str) -> None:
    # Peering was rendered only for replicas > 1: `kubectl scale --replicas 2` then ran two
    # operators that both acted on every milestone.
    docs = render("--set", f"operator.scope={scope}", "--include-crds")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["GENTRAIN_PEERING"]
    kind = "ClusterKopfPeering" if scope == "cluster" else "KopfPeering"
    peering = next(d for d in docs if d["kind"] == kind)
    assert peering["metadata"]["name"] == env["GENTRAIN_PEERING"]
    crds = {d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert {"kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"} <= crds
    # In crds/, not templates/: installed before the peering object that needs them.
    templated = {
        d["metadata"]["name"]
        for d in render("--set", f"operator.scope={scope}")
        if d["kind"] == "CustomResourceDefinition"
    }
    assert not {n for n in templated if n.endswith("kopf.dev")}


def test_namespace_scope_grants_only_the_watched_namespaces() -> None:
    # Cluster scope lets the operator make pods and ConfigMaps in every namespace; a
    # platform team can instead name the namespaces whose jobs it runs.
    docs = render("--set", "operator.scope=namespace,operator.watchNamespaces={team-a,team-b}")
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"}
    for kind in ("Role", "RoleBinding", "KopfPeering"):
        assert sorted(d["metadata"]["namespace"] for d in docs if d["kind"] == kind) == [
            "team-a",
            "team-b",
        ], kind
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert {s["namespace"] for b in bindings for s in b["subjects"]} == {"gentrain"}
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["GENTRAIN_NAMESPACE"] == "team-a,team-b"
    result = helm(
        "template", "t", str(CHART), "--set", "operator.watchNamespaces={Team_A}", check=False
    )
    assert result.returncode != 0 and "watchNamespaces" in result.stderr
