"""A program's handlers of the job's one-shot commands (roll back, start afresh, search
the learning rate), each run once per command id, at the milestone after it appears."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from gentrain_contract import program
from gentrain_contract.commands import CommandSpec
from gentrain_contract.vocabulary import Action, Command

from .applied import AppliedCommands
from .rate_search import SearchResult
from .rollback import NoCheckpointError

log = logging.getLogger("gentrain_sdk")
# A handler may return what it found (a learning-rate search: its SearchResult), which
# the milestone reports and the operator adopts.
Handler = Callable[[CommandSpec], object]
# The ladder actions a command's handler makes possible.
ENABLES = {
    Command.ROLLBACK: (Action.ROLLBACK, Action.ROLLBACK_SKIP_BATCHES),
    Command.RESET_DISCRIMINATOR: (Action.RESET_DISCRIMINATOR,),
    Command.REINITIALIZE: (Action.REINITIALIZE,),
    Command.SEARCH_LEARNING_RATE: (Action.SEARCH_LEARNING_RATE,),
    Command.PROBE_LEARNING_RATE: (Action.PROBE_LEARNING_RATE,),
}
REFUSAL_LENGTH = 63  # a label value the operator keeps whole


class CommandRunner:
    """Runs each command of the configuration once, through the handler registered for
    its action; one without a handler, or whose handler raises, is refused (reported at
    the milestone) and not tried again. The ids applied are kept in the job's checkpoint
    directory ($GENTRAIN_CHECKPOINT_DIR), so a restarted program does not repeat one."""

    def __init__(self, configured: Iterable[str]) -> None:
        directory = os.environ.get(program.CHECKPOINT_DIR_VARIABLE)
        path = Path(directory) / program.APPLIED_COMMANDS_FILE if directory else None
        self.applied = AppliedCommands(path, configured)
        self.handlers: dict[str, Handler] = {}
        self.counters: dict[tuple[str, ...], float] = {}  # commands applied, by action
        self.origin_step = 0  # where the weights now training were initialised
        self._refused: dict[str, str] = {}  # command id -> why, until the next milestone
        self._searched: SearchResult | None = None  # until the next milestone

    def register(self, action: str, handler: Handler) -> tuple[Action, ...]:
        """Makes `handler` the one for `action`; returns the ladder actions it enables."""
        if action not in {str(c) for c in Command}:
            raise ValueError(
                f"on_command: {action!r} is not a command gentrain sends "
                f"(known: {', '.join(str(c) for c in Command)})"
            )
        self.handlers[action] = handler
        return ENABLES[Command(action)]

    def run(
        self, commands: Sequence[CommandSpec], step: int
    ) -> list[tuple[CommandSpec, str | None]]:
        """Runs the commands not applied yet, in order, at milestone `step`; each with why
        it was refused (None: applied)."""
        outcomes = []
        for command in commands:
            if command.id in self.applied:
                continue
            handler = self.handlers.get(command.action)
            if handler is None:
                self._refused[command.id] = "unsupported"
            else:
                self._run(handler, command, step)
            outcomes.append((command, self._refused.get(command.id)))
            # Recorded after the handler: a crash in between repeats it, never loses it.
            try:
                self.applied.record(command.id)
            except OSError as error:  # a read-only or full volume: kept in memory
                log.warning("cannot record applied commands in %s: %s", self.applied.path, error)
        return outcomes

    def _run(self, handler: Handler, command: CommandSpec, step: int) -> None:
        try:
            found = handler(command)
        except NoCheckpointError as error:  # the operator's reason: its ladder moves on
            log.warning("%s (%s) refused: %s", command.id, command.action, error)
            self._refused[command.id] = "no_checkpoint"
            return
        except Exception as error:  # the program's own code: reported, never fatal here
            log.exception("the handler of %s (%s) failed", command.id, command.action)
            self._refused[command.id] = f"failed: {type(error).__name__}"[:REFUSAL_LENGTH]
            return
        if isinstance(found, SearchResult):
            self._searched = found
        key = (command.action,)
        self.counters[key] = self.counters.get(key, 0.0) + 1
        if command.action == Command.REINITIALIZE:
            self.origin_step = step

    def take_refusals(self) -> dict[str, str]:
        """The commands refused since the last call (each is reported at one milestone)."""
        refused, self._refused = self._refused, {}
        return refused

    def take_search(self) -> SearchResult | None:
        """The learning-rate search run since the last call, if any (reported once)."""
        searched, self._searched = self._searched, None
        return searched
