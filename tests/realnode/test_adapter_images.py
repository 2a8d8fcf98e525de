"""The adapters' example images as users build and run them: examples/sdk/Dockerfile.lightning
and Dockerfile.huggingface (a Lightning Trainer, a Hugging Face Trainer, each with
gentrain-sdk's callback), their manifests as shipped, on the real node under the chart.

Built on demand (`scripts/images.sh lightning-regression`, `huggingface-gpt2`: not part
of `make images`, to keep CI's real-node tier within its time); where the node does not
hold the image the test is skipped, saying how to build it."""

from __future__ import annotations

import pytest

from tests.realnode.test_training_on_node import example, finished, trainer_pods
from tests.support import kube

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.slow]
IMAGES = {
    "custom-lightning-regression": "localhost/lightning-regression:dev",
    "custom-huggingface-gpt2": "localhost/huggingface-gpt2:dev",
}


def node_images(cluster: kube.Cluster) -> set[str]:
    """Every name of every image the nodes report holding (the kubelet's node status)."""
    return {
        name
        for node in cluster.core.list_node().items
        for image in node.status.images or []
        for name in image.names or []
    }


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_an_adapters_example_image_runs_as_shipped_and_is_remediated(
    real_node: kube.Cluster, namespace: str, release: str, name: str
) -> None:
    image = IMAGES[name]
    if image not in node_images(real_node):
        pytest.skip(
            f"{image} is not on the node: `scripts/images.sh {image.split('/')[1].split(':')[0]}` "
            "builds it (not part of `make images`), the real node imports it at start"
        )
    real_node.apply(example(name, spec={"resources": {"cpu": "1", "memory": "2Gi"}}), namespace)
    final = finished(real_node, namespace, name, timeout=1500)
    last = final["milestones"][-1]
    print(f"{name} in its image on the real node: {final['phase']}, remediations "
          f"{[(r['finding'], r['actions']) for r in final.get('remediations', [])]}, "
          f"final validation loss {last.get('validation_loss')} "
          f"(learned-nothing {last.get('baseline_loss')})")  # fmt: skip
    assert final["phase"] == "Succeeded", final.get("message")
    assert final["remediations"][0]["finding"] == "NotLearning"
    assert any(m.get("origin_step", 0) > 0 for m in final["milestones"]), "never started afresh"
    # Recovered: well below what a model that learned nothing scores (as on the node agent,
    # tests/operator/test_adapters_cluster.py).
    assert last["validation_loss"] < 0.95 * last["baseline_loss"], last
    (pod,) = trainer_pods(real_node, namespace, name)
    assert pod.spec.containers[0].image == image
