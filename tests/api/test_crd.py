"""The GenerativeTrainingJob API on a real API server: every example is accepted, every
manifest in examples/invalid/ is rejected with a message naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.kube import REPO, Cluster

pytestmark = pytest.mark.cluster

CRD = REPO / "crds" / "generativetrainingjobs.gentrain.io.yaml"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
INVALID = sorted((REPO / "examples" / "invalid").glob("*.yaml"))


def test_there_are_enough_examples() -> None:
    families = {yaml.safe_load(p.read_text())["spec"]["model"]["family"] for p in EXAMPLES}
    assert families == {"gan", "vae", "transformer", "diffusion", "custom"}
    assert len(EXAMPLES) >= 4 and len(INVALID) >= 15


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_accepted(cluster: Cluster, gtj_crd: None, namespace: str, path: Path) -> None:
    cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_is_rejected_naming_the_field(
    cluster: Cluster, gtj_crd: None, namespace: str, path: Path
) -> None:
    expected = next(
        line.split(":", 1)[1].strip()
        for line in path.read_text().splitlines()
        if line.startswith("# expect:")
    )
    result = cluster.kubectl("apply", "-n", namespace, "-f", str(path), check=False)
    assert result.returncode != 0, f"{path.name} was accepted"
    assert expected in result.stderr, result.stderr
    assert (
        "NotFound" in cluster.kubectl("get", "gtj", path.stem, "-n", namespace, check=False).stderr
    )


def test_kubectl_explain_documents_every_spec_field(cluster: Cluster, gtj_crd: None) -> None:
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    def undocumented(node: dict, path: str) -> list[str]:
        missing = [] if node.get("description") or path.endswith("]") else [path]
        for name, child in (node.get("properties") or {}).items():
            missing += undocumented(child, f"{path}.{name}")
        if isinstance(node.get("items"), dict) and node["items"].get("properties"):
            missing += undocumented({**node["items"], "description": "item"}, f"{path}[]")
        return missing

    assert undocumented(schema["properties"]["spec"], "spec") == []
    explained = cluster.kubectl("explain", "gtj.spec.remediation.mode").stdout
    assert "recommend only records" in explained
