"""The operator and the trainer agree: every example renders to a configuration the
trainer accepts, and the CRD holds what the contract (gentrain_contract) defines: its
hyperparameter block, its families, commands and actions."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest
import yaml

from gentrain_contract import hyperparameters, milestone
from gentrain_contract.milestone import Milestone, compact
from gentrain_contract.vocabulary import Action, Command, Family, FindingKind
from gentrain_operator import builders, ladders, trainer_config
from gentrain_operator.settings import Settings
from gentrain_trainer import config as trainer_config_parser
from gentrain_trainer.config import Retention

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
CRD = yaml.safe_load((ROOT / "crds" / "generativetrainingjobs.gentrain.io.yaml").read_text())
SPEC_SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def job(path: Path) -> dict:
    manifest = yaml.safe_load(path.read_text())
    manifest["metadata"].update({"namespace": "ns", "uid": "1234", "generation": 3})
    return manifest


BUILT_IN = [p for p in EXAMPLES if job(p)["spec"]["model"]["family"] != "custom"]


@pytest.mark.parametrize("path", BUILT_IN, ids=lambda p: p.stem)
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


def test_the_crd_holds_what_the_contract_generates() -> None:
    """The hyperparameter block and its family rules come from the catalogue: a change
    to one without `make generate` fails here, naming what to run."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_crd.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    fields = SPEC_SCHEMA["properties"]["training"]["properties"]["hyperparameters"]["properties"]
    assert list(fields) == [p.api for p in hyperparameters.CATALOGUE]
    rules = [r["fieldPath"] for r in SPEC_SCHEMA["x-kubernetes-validations"]]
    for parameter in hyperparameters.CATALOGUE:
        applies_everywhere = len(parameter.families) == len(hyperparameters.FAMILIES)
        assert (f".training.hyperparameters.{parameter.api}" in rules) != applies_everywhere


def test_the_crd_speaks_the_contracts_vocabulary() -> None:
    properties = SPEC_SCHEMA["properties"]
    assert properties["model"]["properties"]["family"]["enum"] == list(Family)
    command = properties["commands"]["items"]["properties"]["action"]["enum"]
    assert command == list(Command)
    rules = properties["remediation"]["properties"]["rules"]["additionalProperties"]
    assert rules["properties"]["actions"]["items"]["enum"] == list(Action)
    assert list(Family) == list(hyperparameters.FAMILIES)


def test_every_ladder_rung_is_an_action_and_every_finding_is_named() -> None:
    for name, ladder in ladders.LADDERS.items():
        assert FindingKind(name.split("/")[0])
        for rung in ladder:
            assert all(Action(action) for action in rung), name
    assert all(FindingKind(kind) for kind in ladders.PRIORITY)


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


def _conforms(value: object, hint: object) -> bool:
    """Whether a JSON value has the type a Milestone field declares."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint in (int, str):
        return type(value) is hint
    if hint is type(None):
        return value is None
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, arm) for arm in args)
    if origin is dict:
        return isinstance(value, dict) and all(
            _conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items()
        )
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if typing.is_typeddict(hint):
        fields = typing.get_type_hints(hint)
        return isinstance(value, dict) and all(
            k in fields and _conforms(v, fields[k]) for k, v in value.items()
        )
    raise AssertionError(f"no check for {hint!r}")


RECORDINGS = sorted((ROOT / "tests" / "operator" / "recordings").glob("*.json"))


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.stem)
def test_every_recorded_milestone_has_the_contracts_shape(path: Path) -> None:
    """Records of real runs (each family, healthy and faulty), as the operator's parser
    made them: every figure is a field of Milestone, of its declared type."""
    fields = typing.get_type_hints(Milestone)
    for record in json.loads(path.read_text())["milestones"]:
        unknown = set(record) - set(fields)
        assert not unknown, f"{path.stem} step {record['step']}: not in Milestone: {unknown}"
        for key, value in record.items():
            assert _conforms(value, fields[key]), f"{path.stem}: {key}={value!r}"
        assert set(compact(record)) == set(record) & milestone.KEPT


def test_a_custom_job_runs_its_own_program_with_what_the_sdk_reads() -> None:
    manifest = job(ROOT / "examples" / "custom-plain-loop.yaml")
    pod = builders.trainer_pod(manifest, attempt=1, with_gpus=False, settings=Settings())
    container = pod["spec"]["containers"][0]
    assert container["image"] == "localhost/plain-loop:dev"
    assert container["command"] == ["python", "/app/plain_loop.py"]
    assert container["args"] == ["--steps", "600", "--interval", "100", "--pause", "0.05"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GENTRAIN_METRICS_PORT"] == "9090"
    assert env["GENTRAIN_CONFIG"] == "/etc/gentrain/config.yaml"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    rendered = trainer_config.render(manifest["spec"], 3)
    assert rendered["hyperparameters"] == {"learningRate": 1.0}  # the API's own names
    assert rendered["family"] == "custom" and rendered["data"] == {}
