"""A trainer run inside another process puts that process's SIGTERM handler back when it
ends: before, a pytest session that had run one in-process ignored SIGTERM (the handler
set a flag on a trainer long gone), seen when a hung CI run could not be stopped."""

from __future__ import annotations

import signal

from tests.trainer.conftest import MakeTrainer, tiny


def test_the_process_sigterm_handler_is_put_back_after_a_run(make_trainer: MakeTrainer) -> None:
    before = signal.getsignal(signal.SIGTERM)
    trainer = make_trainer(tiny("gan-ring", training={"max_steps": 20}), evaluate=False)
    trainer.run()
    trainer.close()
    assert signal.getsignal(signal.SIGTERM) is before
