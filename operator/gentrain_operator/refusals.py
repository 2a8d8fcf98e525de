"""Commands the trainer refused (pure): the remediations they belonged to are marked
`refused`, with the reasons, instead of being judged as if they had happened."""

from __future__ import annotations

from typing import Any

from gentrain_contract.milestone import Milestone

# What a command the trainer refused means, by the reason it exports.
REFUSALS = {
    "no_checkpoint": "no checkpoint at or before its step: rotated out before it was pinned, "
    "or never saved",
    "no_discriminator": "the family has no discriminator",
    "search_refused": "the learning-rate search could not run",
    "unsupported": "the training program has no handler for it (gentrain-sdk on_command)",
}


def mark_refused(record: Milestone, records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Pending remediations a command of which the trainer refused: outcome `refused`, with
    the reasons, and an Event. Judged as not helped, so the ladder goes on; before, a
    refused rollback was judged like one that had happened."""
    refused = record.get("refused_commands") or {}
    events = []
    for r in records:
        hit = {c: str(refused[c]) for c in r.get("commands") or [] if c in refused}
        if r.get("outcome") != "pending" or not hit:
            continue
        r.update(outcome="refused", refused=hit, judgedAtStep=record["step"])
        why = "; ".join(f"{c}: {REFUSALS.get(reason, reason)}" for c, reason in hit.items())
        events.append(
            (
                "Warning",
                "RemediationRefused",
                f"the trainer refused part of {r['id']} ({' + '.join(r['actions'])} for "
                f"{r['finding']} at step {r['step']}): {why}",
            )
        )
    return events
