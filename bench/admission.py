"""Which pathological cases of the zoo can measure a rescue at all, decided on the runs
the policy never touched: the healthy reference and the broken run, each left alone.

"Rescued" means ending within 10% of the healthy reference. That is evidence only when
(1) the reference learned — a ring WGAN reference that covers 0 of 8 modes "rescues"
every run, whatever the operator does (seen on the evaluation set: 9 of 9 such rows) —
and (2) the fault hurt — where the broken run left alone ends within the same 10% of the
reference, doing nothing "rescues" it too. A case that fails either is *not admitted*:
its rows are reported apart, outside the rescued share (a run `auto` made worse than
`off` still counts against the goal wherever it happened). The rule reads only
the `healthy` (or, where the reference drew an action, `healthy_off`) and `off` runs,
never `auto`, so it cannot be fitted to the policy's results; it is the same for both sets.

"Learned" has a floor only where the metric has a scale of its own: modes covered, out of
the data's modes (at least half, at the median seed). FID and losses have no such scale
here, so for them only (2) applies.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.rescue import within

ZOO = Path(__file__).with_name("zoo")  # bench.efficacy.ZOO (which imports the report)
# The modes of each mixture the trainer draws (gentrain_trainer.datasets.toy2d; a test
# holds the two together without importing torch into the report).
DATA_MODES = {"ring8": 8, "grid25": 25}
LEARNED_SHARE = 0.5  # of the data's modes, covered at the median seed left alone


@dataclass(frozen=True)
class Admission:
    case: str
    healthy: float | None  # median over its seeds, left alone
    off: float | None  # the broken run left alone, median over its seeds
    reason: str | None  # why it is not admitted; None: admitted


def left_alone(row: dict[str, Any]) -> float | None:
    """The healthy reference as it ends untouched: the run itself where it drew no
    action, else the same run measured with remediation off (None for rows from before
    that was measured)."""
    return row.get("healthy_off") if row["healthy_actions"] else row["healthy"]


def admit(case: str, rows: list[dict[str, Any]], modes: int | None) -> Admission:
    """The verdict on one pathological case from its rows (all seeds measured)."""
    alone = [v for v in map(left_alone, rows) if v is not None]
    off = [r["off"] for r in rows if r.get("off") is not None]
    healthy = statistics.median(alone) if alone else None
    broken = statistics.median(off) if off else None
    better, metric = rows[0]["better"], rows[0]["metric"]
    counts_modes = bool(modes) and metric == "modes_covered"
    reason = None
    if healthy is not None and counts_modes and healthy < LEARNED_SHARE * (modes or 0):
        reason = (
            f"its healthy reference, left alone, covers a median {healthy:.3g} of the "
            f"data's {modes} modes (under half: it did not learn)"
        )
    elif healthy is not None and broken is not None and within(broken, healthy, better):
        reason = (
            f"its broken run left alone ends at a median {broken:.3g}, within 10% of the "
            f"healthy reference's {healthy:.3g} (no harm to undo)"
        )
    return Admission(case, healthy, broken, reason)


def admissions(broken: list[dict[str, Any]], modes: dict[str, int | None]) -> dict[str, Admission]:
    """Each pathological case of `broken` (the rows of one set) and its verdict."""
    by_case: dict[str, list[dict[str, Any]]] = {}
    for r in broken:
        by_case.setdefault(r["case"], []).append(r)
    return {case: admit(case, rows, modes.get(case)) for case, rows in sorted(by_case.items())}


def zoo_modes(rows: list[dict[str, Any]], zoo: Path = ZOO) -> dict[str, int | None]:
    """The data's mode count of each case of `rows` whose zoo file names a mixture (None
    for other data, or a case no longer in the zoo)."""
    found: dict[str, int | None] = {}
    for set_name, case in {(r["set"], r["case"]) for r in rows}:
        path = zoo / set_name / f"{case}.yaml"
        spec = yaml.safe_load(path.read_text()) if path.exists() else None
        name = ((spec or {}).get("base", {}).get("dataset") or {}).get("name")
        found[case] = DATA_MODES.get(name) if isinstance(name, str) else None
    return found
