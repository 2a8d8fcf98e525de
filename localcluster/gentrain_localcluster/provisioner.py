"""A local-path volume provisioner: PersistentVolumeClaims get a host directory.

The default StorageClass `gentrain-local` names this provisioner. For each pending claim
of that class it creates a hostPath PersistentVolume under `.cluster/volumes/`, bound to
the claim through `claimRef` (the controller manager's PV controller completes the
binding, as it does for any external provisioner); when a claim is deleted its volume is
released, and the directory and the volume are deleted.

Run as `python -m gentrain_localcluster.provisioner` with the admin kubeconfig.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from .layout import Layout

STORAGE_CLASS = "gentrain-local"
PROVISIONER = "gentrain.io/local-path"
log = logging.getLogger("provisioner")


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def volume_for(claim: Any, root: Path) -> dict[str, Any]:
    name = f"pvc-{claim.metadata.uid}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": claim.spec.resources.requests["storage"]},
            "accessModes": claim.spec.access_modes,
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": str(root / name), "type": "DirectoryOrCreate"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": claim.metadata.namespace,
                "name": claim.metadata.name,
                "uid": claim.metadata.uid,
            },
        },
    }


def sync(core: client.CoreV1Api, root: Path) -> None:
    volumes = {pv.metadata.name: pv for pv in core.list_persistent_volume().items}
    for claim in core.list_persistent_volume_claim_for_all_namespaces().items:
        if claim.spec.storage_class_name != STORAGE_CLASS or claim.status.phase != "Pending":
            continue
        manifest = volume_for(claim, root)
        if manifest["metadata"]["name"] in volumes:
            continue
        directory = root / manifest["metadata"]["name"]
        directory.mkdir(parents=True, exist_ok=True)
        # Open to any user, as rancher's local-path-provisioner makes its directories:
        # a hostPath volume ignores fsGroup, and pods run as non-root users of their own.
        directory.chmod(0o777)
        try:
            core.create_persistent_volume(manifest)
            log.info(
                "provisioned %s for %s/%s",
                manifest["metadata"]["name"],
                claim.metadata.namespace,
                claim.metadata.name,
            )
        except ApiException as error:
            if error.status != 409:
                raise
    for pv in volumes.values():
        ours = (pv.metadata.annotations or {}).get("pv.kubernetes.io/provisioned-by") == PROVISIONER
        if ours and pv.status.phase == "Released":
            shutil.rmtree(root / pv.metadata.name, ignore_errors=True)
            try:
                core.delete_persistent_volume(pv.metadata.name)
                log.info("deleted released volume %s", pv.metadata.name)
            except ApiException as error:
                if error.status != 404:
                    raise


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    layout = Layout.from_environment()
    api = config.new_client_from_config(str(layout.kubeconfig))
    core = client.CoreV1Api(api)
    try:
        client.StorageV1Api(api).create_storage_class(storage_class())
    except ApiException as error:
        if error.status != 409:
            raise
    root = layout.state_dir / "volumes"
    while True:
        try:
            sync(core, root)
        except Exception as error:
            log.warning("sync failed: %s", error)
        time.sleep(1.0)


if __name__ == "__main__":
    main()
