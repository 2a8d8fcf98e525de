"""Hugging Face Transformers' `Trainer` under gentrain: one callback.

    from gentrain_sdk.huggingface import GentrainCallback
    trainer = Trainer(..., callbacks=[GentrainCallback()])

Every logged step (set `logging_steps=1` for per-step figures) is reported with its loss,
gradient norm and learning rate; every evaluation is a milestone (its `eval_loss` the
validation loss; evaluate at the job's checkpoint interval). The job's changes reach the
Trainer: `learningRate` rescales the scheduler's base rates (the schedule's shape is
kept), `gradientClip` sets `max_grad_norm`; `reinitialize` re-initialises the model's
weights and clears the optimizer's state; `search_learning_rate` runs the range test
(gentrain_sdk.rate_search) on the model, from its current weights, over the next batches
of the Trainer's own training data, and trains on at the rate it chose;
`probe_learning_rate` (the operator's rate check) trains the rate in force and ten times
it over those batches from the current weights and judges each on the first batches of
the evaluation data, moving the rate only where the other wins clearly. Needs
`transformers` (not a dependency of the SDK).

With checkpoints saved (`save_strategy="steps"`, `save_steps` = the job's checkpoint
interval; `output_dir` = $GENTRAIN_CHECKPOINT_DIR keeps them on the job's volume), a
`rollback` loads the weights and optimizer state of the newest `checkpoint-<N>` at or
before its step, the job's rates kept (see gentrain_sdk.rollback); without them the
callback does not declare rollbacks, and the operator's ladders pass over them.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from gentrain_contract.commands import CommandSpec as Order
from gentrain_contract.hyperparameters import Value
from gentrain_contract.vocabulary import Action, Command

from . import rate_search, rollback
from .reporter import Reporter

log = logging.getLogger("gentrain_sdk")
CHECKPOINT = re.compile(r"checkpoint-(\d+)")  # the Trainer's PREFIX_CHECKPOINT_DIR


class GentrainCallback(TrainerCallback):  # type: ignore[misc]  # transformers is untyped here
    def __init__(self, reporter: Reporter | None = None, **reporter_options: Any) -> None:
        self.reporter = reporter
        self.options = reporter_options
        self.trainer_args: Any = None
        self.model: Any = None
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.train_data: Any = None
        self.eval_data: Any = None  # the evaluation's batches, known from the first one
        # The rate in force as the job sets it (after a search: the rate it chose, which
        # the operator then writes into the job).
        self.configured_rate: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trainer_args = args
        self.model = kwargs.get("model")
        self.optimizer = kwargs.get("optimizer")
        self.scheduler = kwargs.get("lr_scheduler")
        self.train_data = kwargs.get("train_dataloader")
        if self.reporter is None:
            self.options.setdefault("max_steps", state.max_steps or None)
            self.reporter = Reporter(**self.options)
        self.reporter.support(Action.LOWER_LR, Action.CUT_LR, Action.ENABLE_CLIPPING)
        self.reporter.on_command(Command.REINITIALIZE, self._start_afresh)
        if self.train_data is not None:
            self.reporter.on_command(Command.SEARCH_LEARNING_RATE, self._search)
            # Held out: the evaluation's data, which every milestone (an evaluation) has.
            self.reporter.on_command(Command.PROBE_LEARNING_RATE, self._probe)
        if str(getattr(args.save_strategy, "value", args.save_strategy)) != "no":
            self.reporter.on_command(Command.ROLLBACK, self._roll_back)
        self.reporter.on_change(self._apply)

    def _apply(self, hyperparameters: dict[str, Value]) -> None:
        rate = hyperparameters.get("learningRate")
        if isinstance(rate, int | float) and self.optimizer is not None:
            current = self.configured_rate or float(self.trainer_args.learning_rate)
            self._scale(float(rate) / current)
        clip = hyperparameters.get("gradientClip")
        if isinstance(clip, int | float) and self.trainer_args is not None:
            self.trainer_args.max_grad_norm = float(clip)

    def _scale(self, factor: float) -> None:
        """Every rate times `factor`, the scheduler's too (its schedule keeps its shape)."""
        # Where accelerate has wrapped it (AcceleratedScheduler), the inner one schedules.
        inner = getattr(self.scheduler, "scheduler", self.scheduler)
        rate_search.scale_rates([self.optimizer], [inner] if inner is not None else [], factor)
        self.configured_rate = (
            self.configured_rate or float(self.trainer_args.learning_rate)
        ) * factor

    def _search(self, command: Order) -> rate_search.SearchResult:
        return self._with_model(
            lambda optimizer, loss_of, clip: rate_search.search_torch(
                self.model,
                optimizer,
                loss_of,
                self._next_batches(command.search_steps),
                clip=clip,
                max_factor=command.max_factor,
            )
        )

    def _probe(self, command: Order) -> rate_search.SearchResult:
        if self.eval_data is None:
            raise ValueError("probe: the Trainer has evaluated no data to judge rates on")
        # The Trainer's dataloaders (accelerate's) hand out batches already on the device.
        held_out = list(itertools.islice(iter(self.eval_data), rate_search.HELD_OUT_BATCHES))
        return self._with_model(
            lambda optimizer, loss_of, clip: rate_search.probe_torch(
                self.model,
                optimizer,
                loss_of,
                self._next_batches(command.search_steps),
                held_out,
                clip=clip,
            )
        )

    def _next_batches(self, count: int) -> list[Any]:
        return list(itertools.islice(iter(self.train_data), count))

    def _with_model(
        self, run: Callable[[Any, Callable[[Any], Any], float | None], rate_search.SearchResult]
    ) -> rate_search.SearchResult:
        """`run(optimizer, loss_of, clip)` with the model's own loss and the Trainer's
        clipping; the rates scaled by the factor it chose."""
        clip = float(self.trainer_args.max_grad_norm or 0) or None
        # accelerate's wrapper steps only at gradient-accumulation boundaries: the torch one.
        optimizer = getattr(self.optimizer, "optimizer", self.optimizer)
        result = run(optimizer, lambda batch: self.model(**batch).loss, clip)
        self._scale(result.factor)
        return result

    def _roll_back(self, command: Order) -> None:
        saved = {
            int(match.group(1)): path
            for path in Path(self.trainer_args.output_dir).glob("checkpoint-*")
            if (match := CHECKPOINT.fullmatch(path.name)) and path.is_dir()
        }
        step, directory = rollback.newest_at_or_before(saved, command.step)
        weights = directory / "model.safetensors"
        if weights.exists():
            from safetensors.torch import load_file  # a dependency of transformers

            state = load_file(weights)
        else:
            state = torch.load(directory / "pytorch_model.bin", weights_only=True)
        optimizer_state = torch.load(directory / "optimizer.pt", weights_only=True)
        # The saved file leaves out tied weights (the output embedding is the input's).
        rollback.restore(self.model, [self.optimizer], state, [optimizer_state], strict=False)
        self.model.tie_weights()
        log.info("%s: rolled back to %s (step %d)", command.id, directory.name, step)

    def _start_afresh(self, command: Order) -> None:
        self.model.apply(self.model._init_weights)
        self.optimizer.state.clear()

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        if self.reporter is None or not logs or "loss" not in logs:
            return
        self.reporter.step(
            int(state.global_step),
            logs["loss"],
            grad_norms=logs.get("grad_norm"),
            learning_rates=logs.get("learning_rate"),
        )

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.eval_data = kwargs.get("eval_dataloader", self.eval_data)
        if self.reporter is None or self.reporter.last_step is None:
            return
        figures = {}
        if metrics and "eval_loss" in metrics:
            figures["validation_loss"] = float(metrics["eval_loss"])
        self.reporter.milestone(self.reporter.last_step, figures)
