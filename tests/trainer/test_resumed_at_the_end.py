"""A pod lost after its final checkpoint but before the operator scraped the final
milestone is replaced by one that resumes at the end, with no step left to train. It used
to publish no milestone at all: on the real node the job then ended Succeeded with its
final milestone never recorded (checkpointStep 60 of 120). It publishes it again."""

from __future__ import annotations

from gentrain_contract import metrics
from tests.trainer.conftest import MakeTrainer, tiny


def test_a_trainer_resumed_at_the_end_publishes_the_final_milestone_again(
    make_trainer: MakeTrainer,
) -> None:
    config = tiny("gan-ring", training={"max_steps": 100}, checkpoints={"interval": 50})
    first = make_trainer(config, evaluate=False)
    first.run()
    final = first.collector.milestone
    first.close()
    assert final[metrics.CHECKPOINT_STEP.name] == {(): 100.0}

    again = make_trainer(config, evaluate=False)  # the replacement pod: resumes at 100
    assert again.step == 100
    again.run()
    assert again.collector.milestone == final
    again.close()
