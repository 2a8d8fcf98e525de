"""The job's children as plain dicts (pure): the config ConfigMap, the checkpoint claim,
the trainer pod and the NetworkPolicy in front of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from gentrain_contract import program
from gentrain_contract.hyperparameters import CUSTOM

from . import names
from .settings import Settings

# Scratch space of the trainer pod (its root filesystem is read-only): torch and
# matplotlib caches need far less; NCCL's shared-memory buffers for up to 16 GPUs fit in
# the second (memory-backed, so it counts against the pod's memory limit).
TMP_SIZE_LIMIT = "1Gi"
SHM_SIZE_LIMIT = "4Gi"


def trainer_command(command: tuple[str, ...], gpus: int, nodes: int = 1) -> list[str]:
    """The trainer's command; with more than one GPU or pod, under torchrun (one process
    per GPU, run by the same interpreter as `python -m gentrain_trainer` would be). Across
    pods, torchrun takes the pod count, this pod's rank and rank 0's address from the
    environment (gang_environment), as a user's own torchrun does."""
    if (gpus <= 1 and nodes <= 1) or list(command[-2:]) != ["-m", "gentrain_trainer"]:
        return list(command)
    if nodes > 1:
        launcher = ["-m", "torch.distributed.run", f"--nproc-per-node={max(gpus, 1)}"]
    else:
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}"]
    return [*command[:-2], *launcher, "-m", "gentrain_trainer"]


def gang_environment(nodes: int, node_rank: int, rendezvous: str | None) -> list[dict[str, Any]]:
    """What a pod of a job of `nodes` pods tells torchrun (its PET_* variables, read as its
    --nnodes, --node-rank, --master-addr and --master-port) and the trainer (its own
    address, so that its ranks listen where the other pods reach them). `rendezvous`:
    rank 0's pod IP; None on rank 0 itself, which listens at its own."""
    pod_ip = {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    return [
        {"name": "PET_NNODES", "value": str(nodes)},
        {"name": "PET_NODE_RANK", "value": str(node_rank)},
        {"name": "PET_MASTER_ADDR", **({"value": rendezvous} if rendezvous else pod_ip)},
        {"name": "PET_MASTER_PORT", "value": str(program.RENDEZVOUS_PORT)},
        {"name": program.POD_IP_VARIABLE, **pod_ip},
    ]


def rendezvous_probe(command: tuple[str, ...]) -> dict[str, Any] | None:
    """The readiness probe of a pod of several (the built-in trainer's): Ready while it
    reaches rank 0's rendezvous from its own network (gentrain_trainer.rendezvous_probe,
    run by the trainer's interpreter). A user's own program in its own image gets none."""
    if list(command[-2:]) != ["-m", "gentrain_trainer"]:
        return None
    return {
        "exec": {"command": [*command[:-2], "-m", "gentrain_trainer.rendezvous_probe"]},
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "failureThreshold": 1,
    }


def owner_reference(job: Mapping[str, Any]) -> dict[str, Any]:
    meta = job["metadata"]
    return {
        "apiVersion": f"{names.GROUP}/{names.VERSION}",
        "kind": names.KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(
    job: Mapping[str, Any], name: str, extra_labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    job_name = job["metadata"]["name"]
    return {
        "name": name,
        "namespace": job["metadata"]["namespace"],
        "labels": {**names.labels(job_name), **(extra_labels or {})},
        "ownerReferences": [owner_reference(job)],
    }


def config_map(job: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(job, names.configmap_name(job["metadata"]["name"])),
        "data": {program.CONFIG_KEY: yaml.safe_dump(dict(config), sort_keys=False)},
    }


def network_policy(job: Mapping[str, Any], settings: Settings) -> dict[str, Any] | None:
    """Ingress to the trainer pod: its metrics port, from the operator's pods and the
    configured scrapers (Prometheus) only. The trainer serves nothing else, and a single
    pod's torchrun ranks talk over loopback, which no policy filters. The pods of a job of
    several pods also take anything from each other: their ranks' collectives (gloo,
    NCCL) connect on ports they pick at run time."""
    if not settings.network_policy or not settings.operator_namespace:
        return None
    name = job["metadata"]["name"]
    operator = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": settings.operator_namespace}
        },
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "gentrain-operator"}},
    }
    trainer = names.labels(name)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(job, names.network_policy_name(name)),
        "spec": {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": trainer["app.kubernetes.io/name"],
                    "gentrain.io/job": name,
                }
            },
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [operator, *settings.metrics_from],
                    "ports": [{"protocol": "TCP", "port": settings.trainer_metrics_port}],
                },
                *(
                    [{"from": [{"podSelector": {"matchLabels": {"gentrain.io/job": name}}}]}]
                    if names.nodes(job["spec"]) > 1
                    else []
                ),
            ],
        },
    }


def checkpoint_claim(job: Mapping[str, Any]) -> dict[str, Any] | None:
    checkpoints = job["spec"].get("checkpoints") or {}
    if checkpoints.get("storage", "PersistentVolumeClaim") != "PersistentVolumeClaim":
        return None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": checkpoints.get("size", "1Gi")}},
    }
    if checkpoints.get("storageClassName"):
        spec["storageClassName"] = checkpoints["storageClassName"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(job, names.claim_name(job["metadata"]["name"])),
        "spec": spec,
    }


def trainer_pod(
    job: Mapping[str, Any], attempt: int, with_gpus: bool, settings: Settings
) -> dict[str, Any]:
    spec = job["spec"]
    job_name = job["metadata"]["name"]
    resources = spec.get("resources") or {}
    cpu, memory = resources.get("cpu", "1"), resources.get("memory", "2Gi")
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory}
    gpus = int(resources.get("gpus", 0))
    nodes = names.nodes(spec)
    if with_gpus and gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    checkpoints = spec.get("checkpoints") or {}
    if checkpoints.get("storage", "PersistentVolumeClaim") == "PersistentVolumeClaim":
        checkpoint_volume: dict[str, Any] = {
            "persistentVolumeClaim": {"claimName": names.claim_name(job_name)}
        }
    else:
        checkpoint_volume = {"emptyDir": {}}
    volumes = [
        {"name": "config", "configMap": {"name": names.configmap_name(job_name)}},
        {"name": "checkpoints", **checkpoint_volume},
        # Bounded: the node's disk is shared, and a process filling /tmp evicts its
        # neighbours before itself.
        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
    ]
    mounts = [
        {"name": "config", "mountPath": "/etc/gentrain", "readOnly": True},
        {"name": "checkpoints", "mountPath": program.CHECKPOINT_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir: the root is read-only
    ]
    if with_gpus and gpus > 1:
        # NCCL passes data between the GPUs' processes through shared memory; a
        # container's default /dev/shm (64 MiB) makes it fail.
        volumes.append(
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE_LIMIT}}
        )
        mounts.append({"name": "shm", "mountPath": "/dev/shm"})  # noqa: S108 - the pod's own memory volume
    claim = (spec.get("dataset") or {}).get("volumeClaimName")
    if claim:
        volumes.append(
            {"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
        mounts.append({"name": "data", "mountPath": program.DATA_DIR, "readOnly": True})
    port = settings.trainer_metrics_port
    # The trainer waits for one more scrape before it exits, so its final milestone is
    # read. Normally that is within one scrape interval; the wait allows for an operator
    # whose API calls are timing out (30 s each, then a back-off): an API server that
    # stalled for 90 s lost a run's final milestone when the trainer waited 3 s.
    final_wait = program.FINAL_SCRAPE_WAIT_SECONDS
    # The operator's own scrape, not Prometheus's, ends that wait. Read through Prometheus
    # (monitoring.prometheusURL), any scrape may be the one that feeds it.
    final_scraper = (
        []
        if (spec.get("monitoring") or {}).get("prometheusURL")
        else ["--final-scrape-by", names.MONITOR_USER_AGENT]
    )
    custom = spec["model"]["family"] == CUSTOM
    container = {
        "name": "trainer",
        "image": spec.get("image") or settings.trainer_image,
        "command": (
            list(spec["command"])
            if custom
            else trainer_command(settings.trainer_command, gpus if with_gpus else 0, nodes)
        ),
        "args": list(spec.get("args") or [])
        if custom
        else [
            "--config",
            program.CONFIG_PATH,
            "--checkpoint-dir",
            program.CHECKPOINT_DIR,
            "--metrics-port",
            str(port),
            "--resume",
            "auto",
            "--device",
            "auto" if with_gpus and gpus else "cpu",
            "--final-scrape-wait",
            f"{final_wait:g}",
            *final_scraper,
        ],
        "env": [
            # torch sizes its thread pool from this, not from the node's cores.
            {
                "name": program.CPU_LIMIT_VARIABLE,
                "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}},
            },
            {"name": "HOME", "value": "/tmp"},  # noqa: S108 - writable scratch for libraries that want a home
            {"name": program.JOB_VARIABLE, "value": job_name},
            # Where gentrain-sdk finds what the built-in trainer is given as arguments.
            {"name": program.METRICS_PORT_VARIABLE, "value": str(port)},
            {"name": program.CONFIG_VARIABLE, "value": program.CONFIG_PATH},
            {"name": program.CHECKPOINT_DIR_VARIABLE, "value": program.CHECKPOINT_DIR},
            *(gang_environment(nodes, 0, None) if nodes > 1 else []),
        ],
        "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": limits},
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    probe = rendezvous_probe(settings.trainer_command) if nodes > 1 and not custom else None
    if probe is not None:
        container["readinessProbe"] = probe
    scheduling = spec.get("scheduling") or {}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",  # the operator starts the next attempt, resuming from a checkpoint
        "terminationGracePeriodSeconds": 60,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.trainer_uid,
            "runAsGroup": settings.trainer_uid,
            "fsGroup": settings.trainer_uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        if scheduling.get(key):
            pod_spec[key] = scheduling[key]
    if nodes > 1 and not scheduling.get("affinity"):
        pod_spec["affinity"] = spread_over_nodes(job_name)
    if spec.get("imagePullSecrets"):
        pod_spec["imagePullSecrets"] = spec["imagePullSecrets"]
    gang = {names.NODE_RANK_LABEL: "0"} if nodes > 1 else {}
    metadata = _metadata(
        job, names.pod_name(job_name, attempt), {"gentrain.io/attempt": str(attempt), **gang}
    )
    labels, annotations = propagated_metadata(job)
    metadata["labels"] = {**labels, **metadata["labels"]}
    metadata["annotations"] = {**annotations, "gentrain.io/gpus": str(gpus if with_gpus else 0)}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}


def spread_over_nodes(job_name: str) -> dict[str, Any]:
    """A job's pods on different nodes where the cluster has room: the point of several
    pods is several nodes' GPUs (one node may still take two when nothing else fits)."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"gentrain.io/job": job_name}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }


def gang_pod(
    job: Mapping[str, Any],
    rank_zero: Mapping[str, Any],
    node_rank: int,
    with_gpus: bool,
    settings: Settings,
) -> dict[str, Any]:
    """Pod `node_rank` (>= 1) of a job of several pods, made once rank 0's pod (the one
    trainer_pod builds) has an address to join at. Owned by rank 0's pod, so that whatever
    stops it (suspension, eviction, a relaunch) stops the whole gang. It holds no
    checkpoint volume (rank 0 reads and hands on the checkpoints), serves no metrics, and
    runs where Kueue and the scheduling rules put rank 0's (same selectors)."""
    meta = rank_zero["metadata"]
    attempt = int(meta["labels"]["gentrain.io/attempt"])
    body = trainer_pod(job, attempt, with_gpus, settings)
    job_name = job["metadata"]["name"]
    body["metadata"]["name"] = names.gang_pod_name(job_name, attempt, node_rank)
    body["metadata"]["labels"][names.NODE_RANK_LABEL] = str(node_rank)
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}
    ]
    spec = body["spec"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        if rank_zero["spec"].get(key):
            spec[key] = rank_zero["spec"][key]
    spec["volumes"] = [
        {"name": "checkpoints", "emptyDir": {}} if volume["name"] == "checkpoints" else volume
        for volume in spec["volumes"]
    ]
    container = spec["containers"][0]
    container.pop("ports", None)
    nodes = names.nodes(job["spec"])
    own = gang_environment(nodes, node_rank, rank_zero["status"]["podIP"])
    replaced = {variable["name"] for variable in own}
    container["env"] = [v for v in container["env"] if v["name"] not in replaced] + own
    return body


# Annotations that are not the user's to pass on: kubectl's copy of the whole manifest,
# and the operator's own (gentrain.io/remediation-intent on the job, config-version and
# gpus on the pod).
UNPROPAGATED_ANNOTATIONS = ("kubectl.kubernetes.io/", "gentrain.io/")


def propagated_metadata(job: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations a job's pods carry for the user: the job's own, then
    spec.podTemplate.metadata's over them (the operator's labels go over both), so that
    network policies and cost tools that select pods by label see the job's."""
    meta = job["metadata"]
    template = ((job["spec"].get("podTemplate") or {}).get("metadata")) or {}
    labels = {
        key: value
        for key, value in {**(meta.get("labels") or {}), **(template.get("labels") or {})}.items()
        # The queue is the job's, through its Workload (see names.JOB_ONLY_LABELS).
        if key not in names.JOB_ONLY_LABELS
    }
    annotations = {
        key: value
        for key, value in {
            **(meta.get("annotations") or {}),
            **(template.get("annotations") or {}),
        }.items()
        if not key.startswith(UNPROPAGATED_ANNOTATIONS)
    }
    return labels, annotations
