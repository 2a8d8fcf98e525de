"""What a diagnosis rule returns, and what the rules share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gentrain_contract.vocabulary import FindingKind, Severity

SEVERITIES = tuple(Severity)


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
