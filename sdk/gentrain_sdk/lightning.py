"""Lightning's `Trainer` under gentrain: one callback.

    from gentrain_sdk.lightning import GentrainCallback
    trainer = lightning.Trainer(..., callbacks=[GentrainCallback()])

Every training batch is reported with its loss (what `training_step` returns), the
gradient norm before clipping and the learning rate; every validation run is a milestone
(the logged `val_loss`, or the metric named by `monitor`, is the validation loss; run
validation at the job's checkpoint interval, `val_check_interval`). The job's changes
reach the Trainer: `learningRate` rescales the optimizers' rates and their schedulers'
base rates (a schedule keeps its shape), `gradientClip` sets the Trainer's
`gradient_clip_val`; `reinitialize` resets every module's parameters and clears the
optimizers' state; `search_learning_rate` runs the range test (gentrain_sdk.rate_search)
with the module's own `training_step` over the next batches of its training data;
`probe_learning_rate` (the operator's rate check) trains the rate in force and ten times
it over those batches from the current weights and judges each by `training_step` on the
first batches of the validation data, moving the rate only where the other wins clearly.
Needs `lightning` (not a dependency of the SDK).

With a `ModelCheckpoint` saving every checkpoint interval (`every_n_train_steps`,
`save_top_k=-1`; `dirpath` = $GENTRAIN_CHECKPOINT_DIR keeps them on the job's volume), a
`rollback` loads the weights and optimizer states of the newest checkpoint at or before
its step, the job's rates kept (see gentrain_sdk.rollback); without one the callback
does not declare rollbacks, and the operator's ladders pass over them.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from gentrain_contract.commands import CommandSpec
from gentrain_contract.hyperparameters import Value
from gentrain_contract.vocabulary import Action, Command

from . import rate_search, rollback
from .reporter import Reporter

log = logging.getLogger("gentrain_sdk")
STEP = re.compile(r"step=(\d+)")  # in ModelCheckpoint's default file name


def _loss(outputs: Any) -> Any:
    """The loss of what `training_step` returned: a tensor, or a mapping with "loss"."""
    return outputs.get("loss") if isinstance(outputs, dict) else outputs


class GentrainCallback(Callback):
    def __init__(
        self, reporter: Reporter | None = None, monitor: str = "val_loss", **reporter_options: Any
    ) -> None:
        self.reporter = reporter
        self.monitor = monitor
        self.options = reporter_options
        self.trainer: Any = None
        self.module: Any = None
        self.grad_norm: float | None = None
        self.configured_rate: float | None = None  # the job's rate (after a search: its choice)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.trainer, self.module = trainer, pl_module
        if self.reporter is None:
            if trainer.max_steps and trainer.max_steps > 0:
                self.options.setdefault("max_steps", trainer.max_steps)
            self.reporter = Reporter(**self.options)
        self.reporter.support(Action.LOWER_LR, Action.CUT_LR, Action.ENABLE_CLIPPING)
        self.reporter.on_command(Command.REINITIALIZE, self._start_afresh)
        self.reporter.on_command(Command.SEARCH_LEARNING_RATE, self._search)
        # Held out: the validation data, which every milestone (a validation) has.
        self.reporter.on_command(Command.PROBE_LEARNING_RATE, self._probe)
        if self._checkpoint_directories():
            self.reporter.on_command(Command.ROLLBACK, self._roll_back)
        self.reporter.on_change(self._apply)

    def _checkpoint_directories(self) -> list[Path]:
        return [
            Path(callback.dirpath)
            for callback in self.trainer.checkpoint_callbacks
            if getattr(callback, "dirpath", None)
        ]

    def _saved(self) -> dict[int, Path]:
        """The checkpoints on disk by step: read from the file name where it says
        (`step=N`), else from the file."""
        saved = {}
        for directory in self._checkpoint_directories():
            for path in directory.glob("*.ckpt"):
                match = STEP.search(path.stem)
                step = (
                    int(match.group(1))
                    if match
                    else int(
                        torch.load(path, map_location="cpu", weights_only=False)["global_step"]
                    )
                )
                saved[step] = path
        return saved

    def _roll_back(self, command: CommandSpec) -> None:
        step, path = rollback.newest_at_or_before(self._saved(), command.step)
        # Lightning's own checkpoints hold more than tensors (hyperparameters, loops'
        # state): the program wrote them, so they are trusted as it trusts them on resume.
        saved = torch.load(path, map_location=self.module.device, weights_only=False)
        rollback.restore(
            self.module, self.trainer.optimizers, saved["state_dict"], saved["optimizer_states"]
        )
        log.info("%s: rolled back to %s (step %d)", command.id, path.name, step)

    def _rate(self) -> float:
        return float(self.trainer.optimizers[0].param_groups[0]["lr"])

    def _apply(self, hyperparameters: dict[str, Value]) -> None:
        rate = hyperparameters.get("learningRate")
        if isinstance(rate, int | float):
            current = self.configured_rate or self._base_rate()
            self._scale(float(rate) / current)
        clip = hyperparameters.get("gradientClip")
        if isinstance(clip, int | float):
            self.trainer.gradient_clip_val = float(clip) if clip > 0 else None

    def _base_rate(self) -> float:
        """The first optimizer's rate before any schedule (its scheduler's base rate)."""
        for config in self.trainer.lr_scheduler_configs:
            if getattr(config.scheduler, "base_lrs", None):
                return float(config.scheduler.base_lrs[0])
        return self._rate()

    def _scale(self, factor: float) -> None:
        current = self.configured_rate or self._base_rate()
        schedulers = [config.scheduler for config in self.trainer.lr_scheduler_configs]
        rate_search.scale_rates(self.trainer.optimizers, schedulers, factor)
        self.configured_rate = current * factor

    def _start_afresh(self, command: CommandSpec) -> None:
        for module in self.module.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
        for optimizer in self.trainer.optimizers:
            optimizer.state.clear()

    def _batches(self, loader: Any, count: int) -> list[Any]:
        module = self.module
        return [
            module.transfer_batch_to_device(batch, module.device, 0)
            for batch in itertools.islice(iter(loader), count)
        ]

    def _search(self, command: CommandSpec) -> rate_search.SearchResult:
        batches = self._batches(self.trainer.train_dataloader, command.search_steps)
        return self._with_training_step(
            lambda loss_of, clip: rate_search.search_torch(
                self.module,
                self.trainer.optimizers[0],
                loss_of,
                batches,
                clip=clip,
                max_factor=command.max_factor,
            )
        )

    def _probe(self, command: CommandSpec) -> rate_search.SearchResult:
        validation = self.trainer.val_dataloaders
        if isinstance(validation, list | tuple):  # several: the first one's
            validation = validation[0] if validation else None
        if validation is None:
            raise ValueError("probe: the Trainer has no validation data to judge rates on")
        batches = self._batches(self.trainer.train_dataloader, command.search_steps)
        held_out = self._batches(validation, rate_search.HELD_OUT_BATCHES)
        return self._with_training_step(
            lambda loss_of, clip: rate_search.probe_torch(
                self.module, self.trainer.optimizers[0], loss_of, batches, held_out, clip=clip
            )
        )

    def _with_training_step(
        self, run: Callable[[Callable[[Any], Any], float | None], rate_search.SearchResult]
    ) -> rate_search.SearchResult:
        """`run(loss_of, clip)` with the module's own training_step as the loss; the rates
        scaled by the factor it chose."""
        module = self.module
        clip = self.trainer.gradient_clip_val
        # training_step may call self.log, which Lightning refuses outside its own loop.
        logging = module.log, module.log_dict
        module.log = module.log_dict = lambda *args, **kwargs: None
        try:
            result = run(
                lambda batch: _loss(module.training_step(batch, 0)),
                float(clip) if clip else None,
            )
        finally:
            module.log, module.log_dict = logging
        self._scale(result.factor)
        return result

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        norms = [p.grad.detach().norm() for p in pl_module.parameters() if p.grad is not None]
        self.grad_norm = float(torch.linalg.vector_norm(torch.stack(norms))) if norms else None

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = _loss(outputs)
        if self.reporter is None or loss is None:
            return
        self.reporter.step(
            int(trainer.global_step),
            loss,
            grad_norms=self.grad_norm,
            learning_rates=self._rate(),
        )

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        reporter = self.reporter
        if reporter is None or trainer.sanity_checking or reporter.last_step is None:
            return
        if reporter.last_milestone == reporter.last_step:  # the epoch's end validates again
            return
        figures = {}
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and math.isfinite(float(value)):
            figures["validation_loss"] = float(value)
        reporter.milestone(reporter.last_step, figures)
