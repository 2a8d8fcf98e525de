"""What the operator writes is complete and its ids are its own.

- The evidence of a finding read from a running operator's history must carry its
  figures: `compact()` kept only the fields diagnosis thresholds read, so `loss_max`,
  `d_real` and `d_fake` were always null in status (the tests fed uncompacted recordings).
- A user may add commands too: one whose id is the operator's next (`r1-0`) made every
  remediation PATCH a 422 (the list is keyed by id), retried for ever."""

from __future__ import annotations

from typing import Any

from gentrain_operator.milestones import process
from tests.operator.test_missed_milestones import transformer_job
from tests.operator.test_remediation_intent import milestone


def gan_job() -> dict[str, Any]:
    return {
        "metadata": {"name": "g", "namespace": "n", "generation": 1},
        "spec": {
            "model": {"family": "gan"},
            "dataset": {"name": "ring"},
            "training": {"maxSteps": 2000},
            "checkpoints": {"interval": 100},
        },
        "status": {},
    }


def test_evidence_figures_survive_the_history_kept_in_status() -> None:
    job = gan_job()
    record = {
        "step": 100,
        "time": 100.0,
        "generation": 1,
        "nonfinite": 0,
        "loss_mean": {"discriminator": 0.05, "generator": 6.0},
        "discriminator_accuracy_ratio": 0.97,
        "d_real": 0.98,
        "d_fake": 0.03,
        "loss_max": {"discriminator": 0.4, "generator": 9.0},
    }
    outcome = process(record, job, now=0.0)
    finding = next(
        f for f in outcome.status["findings"] if f["kind"] == "DiscriminatorOverpowering"
    )
    assert finding["evidence"]["d_real"] == 0.98
    assert finding["evidence"]["d_fake"] == 0.03
    kept = outcome.status["milestones"][-1]
    assert kept["loss_max"] == {"discriminator": 0.4, "generator": 9.0}


def test_a_user_command_holding_the_operators_next_id_does_not_block_the_remediation() -> None:
    job = transformer_job()
    user_command = {"id": "r1-0", "action": "rollback", "step": 0}
    job["spec"]["commands"] = [user_command]
    job["status"] = process(milestone(100), job, now=0.0).status
    outcome = process(milestone(200, nonfinite=5), job, now=1.0)
    assert outcome.spec is not None and outcome.record is not None
    ids = [c["id"] for c in outcome.spec["commands"]]
    assert len(ids) == len(set(ids)), ids
    assert outcome.spec["commands"][0] == user_command  # the user's command is untouched
    assert outcome.record["commands"] == ids[1:] == ["r1-0.1"]
