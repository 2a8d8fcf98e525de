"""A pod lost after its final checkpoint but before the operator scraped the final
milestone is replaced by one that resumes at the end, with no step left to train. It used
to publish no milestone at all: on the real node the job then ended Succeeded with its
final milestone never recorded (checkpointStep 60 of 120). It publishes it again."""

from __future__ import annotations

import contextlib

from gentrain_contract import metrics
from gentrain_trainer import run_state
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


class Killed(BaseException):
    """The pod's SIGKILL, as far as the trainer's code can tell."""


def final_milestone_after_dying_at_the_end(
    make_trainer: MakeTrainer, save_first: bool
) -> dict[tuple[str, ...], float] | None:
    """A trainer killed while it takes up the job's configuration at its final milestone
    (`save_first`: after saving the checkpoint of that step again, as a rate probe does),
    then its replacement, which resumes at the end: the final milestone it publishes."""
    config = tiny("gan-ring", training={"max_steps": 100}, checkpoints={"interval": 50})
    first = make_trainer(config, evaluate=False)
    take_up = first.apply_config

    def dies_at_the_end() -> None:
        if first.step >= first.max_steps:
            if save_first:
                run_state.save(first)  # as commands.search_learning_rate does after its search
            raise Killed
        take_up()

    first.apply_config = dies_at_the_end  # type: ignore[method-assign]
    with contextlib.suppress(Killed):
        first.run()
    first.close()
    assert first.store.steps()[-1] == 100

    again = make_trainer(config, evaluate=False)  # the replacement pod: resumes at 100
    assert again.step == 100
    again.run()
    again.close()
    return again.collector.milestone.get(metrics.CHECKPOINT_STEP.name)


def test_a_trainer_killed_after_its_final_checkpoint_is_resumed_with_its_final_milestone(
    make_trainer: MakeTrainer,
) -> None:
    # The final checkpoint was saved, then the trainer died while it took up the job's
    # configuration at that milestone (a rate probe there trains for seconds), before the
    # final milestone was kept beside the checkpoint: the replacement resumed at the end
    # with nothing to publish, and the job ended Succeeded at checkpointStep 60 of 120 (a
    # real-node CI run, s29, and s26 before it).
    assert final_milestone_after_dying_at_the_end(make_trainer, save_first=False) == {(): 100.0}


def test_a_final_checkpoint_saved_again_keeps_its_final_milestone(
    make_trainer: MakeTrainer,
) -> None:
    # The configuration taken up at the final milestone carried a rate probe, which saves
    # the checkpoint of its step again (so that a restart keeps its choice); the trainer
    # then died before the milestone was published. The checkpoint saved again had lost
    # the final milestone: the replacement resumed at the end with nothing to publish (a
    # real-node CI run, s34: transformer Succeeded at checkpointStep 60 of 120).
    assert final_milestone_after_dying_at_the_end(make_trainer, save_first=True) == {(): 100.0}
