"""The operator and the trainer agree: every example renders to a configuration the
trainer accepts, defaults and hyperparameter names match, and every metric the operator
reads is one the trainer documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gentrain_operator import builders, snapshot, trainer_config
from gentrain_operator.settings import Settings
from gentrain_trainer import config as trainer_config_parser
from gentrain_trainer import hyperparameters
from gentrain_trainer.config import Retention
from gentrain_trainer.metric_names import BY_NAME

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
CRD = yaml.safe_load((ROOT / "crds" / "generativetrainingjobs.gentrain.io.yaml").read_text())
SPEC_SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def job(path: Path) -> dict:
    manifest = yaml.safe_load(path.read_text())
    manifest["metadata"].update({"namespace": "ns", "uid": "1234", "generation": 3})
    return manifest


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_renders_to_a_config_the_trainer_accepts(path: Path) -> None:
    manifest = job(path)
    rendered = trainer_config.render(manifest["spec"], 3, pinned=[200], judged_through=400)
    parsed = trainer_config_parser.parse(yaml.safe_load(yaml.safe_dump(rendered)))
    assert parsed.generation == 3
    assert parsed.retention == Retention(frozenset({200}), judged_through=400)
    wanted = manifest["spec"]["training"].get("hyperparameters", {})
    mapping = trainer_config.HYPERPARAMETERS[parsed.family]
    for field, value in wanted.items():
        assert parsed.hyperparameters[mapping[field]] == value


def test_every_api_hyperparameter_maps_to_a_trainer_one() -> None:
    api_fields = set(
        SPEC_SCHEMA["properties"]["training"]["properties"]["hyperparameters"]["properties"]
    )
    mapped = {field for mapping in trainer_config.HYPERPARAMETERS.values() for field in mapping}
    assert api_fields == mapped
    for family, mapping in trainer_config.HYPERPARAMETERS.items():
        assert set(mapping.values()) == set(hyperparameters.FAMILIES[family])


def test_operator_defaults_are_the_trainers() -> None:
    for family, mapping in trainer_config.HYPERPARAMETERS.items():
        trainer_defaults = hyperparameters.defaults(family)
        operator_defaults = trainer_config.FAMILY_DEFAULTS[family]
        assert {mapping[k]: v for k, v in operator_defaults.items()} == trainer_defaults


def test_every_metric_the_operator_reads_is_documented_by_the_trainer() -> None:
    source = Path(snapshot.__file__).read_text()
    read = set(re.findall(r'"(gentrain_[a-z_]+)"', source))
    read |= {
        f"gentrain_milestone_{name}"
        for name in re.findall(r'"([a-z_]+)"', source.split("for name in (")[1].split(")")[0])
    }
    read |= {
        f"gentrain_milestone_{n}" for n in ("fid", "kid", "precision", "recall", "inception_score")
    }
    assert read, "the parser reads no metric?"
    assert read <= set(BY_NAME), f"read but not exported: {sorted(read - set(BY_NAME))}"


def test_the_trainer_pod_is_secure_owned_and_sized() -> None:
    manifest = job(ROOT / "examples" / "gan-ring-unstable.yaml")
    pod = builders.trainer_pod(manifest, attempt=2, with_gpus=True, settings=Settings())
    assert pod["metadata"]["name"] == "gan-ring-unstable-trainer-2"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "1234"
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    container = spec["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    args = container["args"]
    assert args[args.index("--device") + 1] == "auto"
    # The trainer waits for one more scrape at the end, long enough for an operator whose
    # API calls time out (30 s) to scrape it (it exits at that scrape).
    assert float(args[args.index("--final-scrape-wait") + 1]) == 120
    fallback = builders.trainer_pod(manifest, attempt=3, with_gpus=False, settings=Settings())
    assert "nvidia.com/gpu" not in fallback["spec"]["containers"][0]["resources"]["limits"]
    args = fallback["spec"]["containers"][0]["args"]
    assert args[args.index("--device") + 1] == "cpu"


def test_several_gpus_run_one_trainer_per_gpu_under_torchrun() -> None:
    manifest = job(ROOT / "examples" / "gan-ring-unstable.yaml")
    manifest["spec"]["resources"]["gpus"] = 4
    settings = Settings(trainer_command=("python", "-m", "gentrain_trainer"))
    container = builders.trainer_pod(manifest, 1, with_gpus=True, settings=settings)["spec"][
        "containers"
    ][0]
    assert container["command"] == [
        "python",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=4",
        "-m",
        "gentrain_trainer",
    ]
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    pod = builders.trainer_pod(manifest, 1, with_gpus=True, settings=settings)
    scratch = {v["name"]: v.get("emptyDir") for v in pod["spec"]["volumes"]}
    assert scratch["shm"] == {"medium": "Memory", "sizeLimit": "4Gi"}
    assert scratch["tmp"] == {"sizeLimit": "1Gi"}  # every emptyDir is bounded
    fallback = builders.trainer_pod(manifest, 2, with_gpus=False, settings=settings)
    assert fallback["spec"]["containers"][0]["command"] == ["python", "-m", "gentrain_trainer"]


def test_empty_dir_storage_makes_no_claim() -> None:
    manifest = job(ROOT / "examples" / "gan-ring.yaml")
    assert builders.checkpoint_claim(manifest)["spec"]["resources"]["requests"]["storage"] == "1Gi"  # type: ignore[index]
    manifest["spec"]["checkpoints"]["storage"] = "EmptyDir"
    assert builders.checkpoint_claim(manifest) is None
    pod = builders.trainer_pod(manifest, 1, False, Settings())
    assert {"name": "checkpoints", "emptyDir": {}} in pod["spec"]["volumes"]
