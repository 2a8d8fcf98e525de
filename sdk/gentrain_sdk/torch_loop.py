"""The plain-PyTorch helper: the operator's changes reach a torch optimizer and model.
Duck-typed (no torch import), so the SDK stays torch-free."""

from __future__ import annotations

from typing import Any

from gentrain_contract.commands import CommandSpec as Order
from gentrain_contract.hyperparameters import Value
from gentrain_contract.vocabulary import Action, Command

from .reporter import Reporter


def follow(reporter: Reporter, optimizer: Any, model: Any | None = None) -> None:
    """Applies the job's learningRate to `optimizer` whenever it changes (its param groups
    keep their ratios to the first group's rate), so the operator may lower or cut it;
    with `model`, a reinitialize command starts afresh: every module's reset_parameters()
    and the optimizer's state cleared. A learning-rate scheduler that sets the groups'
    rates itself would undo the change: scale its base rates in your own on_change."""
    first = float(optimizer.param_groups[0]["lr"])
    ratios = [float(group["lr"]) / first if first else 1.0 for group in optimizer.param_groups]

    def apply(hyperparameters: dict[str, Value]) -> None:
        rate = hyperparameters.get("learningRate")
        if isinstance(rate, int | float):
            for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
                group["lr"] = float(rate) * ratio

    reporter.on_change(apply)
    reporter.support(Action.LOWER_LR, Action.CUT_LR)
    if model is not None:

        def start_afresh(command: Order) -> None:
            for module in model.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
            optimizer.state.clear()

        reporter.on_command(Command.REINITIALIZE, start_afresh)
