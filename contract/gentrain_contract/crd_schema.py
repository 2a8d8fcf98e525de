"""The CRD's view of the hyperparameter catalogue: the OpenAPI properties of
`spec.training.hyperparameters` and the CEL rules that refuse a field of another family.
`scripts/generate_crd.py` writes them into the CRD file; nothing here reads files."""

from __future__ import annotations

from typing import Any

from .hyperparameters import CATALOGUE, FAMILIES, Hyperparameter, Value

# Why a field is refused on a family, where a bare "applies only to" would leave the user
# guessing what to write instead.
HINTS = {
    ("learningRate", "gan"): (
        "a gan has two learning rates: set generatorLearningRate and "
        "discriminatorLearningRate, not learningRate"
    ),
}


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _shown(value: Value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def description(parameter: Hyperparameter) -> str:
    """What `kubectl explain` prints: the meaning, the families and the defaults."""
    families = parameter.families
    text = parameter.description
    if len(families) < len(FAMILIES):
        text = f"{text.removesuffix('.')} ({', '.join(families)})."
    values = set(parameter.defaults.values())
    if len(values) == 1 and not parameter.custom:
        text += f" Default: {_shown(next(iter(values)))}."
    else:
        shown = ", ".join(f"{f} {_shown(v)}" for f, v in parameter.defaults.items())
        text += f" Default: {shown}" + ("; custom: the program's own." if parameter.custom else ".")
    return text


def properties() -> dict[str, dict[str, Any]]:
    """spec.training.hyperparameters' OpenAPI properties, in catalogue order."""
    result: dict[str, dict[str, Any]] = {}
    for parameter in CATALOGUE:
        schema: dict[str, Any] = {"type": parameter.type}
        if parameter.choices:
            schema["enum"] = list(parameter.choices)
        if parameter.exclusive_minimum:
            schema["exclusiveMinimum"] = True
        if parameter.minimum is not None:
            schema["minimum"] = parameter.minimum
        if parameter.maximum is not None:
            schema["maximum"] = parameter.maximum
        schema["description"] = description(parameter)
        result[parameter.api] = schema
    return result


def family_rules() -> list[dict[str, str]]:
    """One CEL rule (on spec) per hyperparameter that some family lacks: set on such a
    family, the job is refused with a message and a fieldPath naming the field."""
    rules = []
    for parameter in CATALOGUE:
        if len(parameter.families) == len(FAMILIES):
            continue
        allowed = ", ".join(f"'{family}'" for family in parameter.families)
        field = f"self.training.hyperparameters.{parameter.api}"
        message = (
            f"{parameter.api} applies only to model.family {_listed(list(parameter.families))}"
        )
        hints = [hint for (api, _), hint in HINTS.items() if api == parameter.api]
        if hints:
            message += f"; {'; '.join(hints)}"
        rules.append(
            {
                "rule": (
                    "!has(self.training.hyperparameters) || "
                    f"!has({field}) || self.model.family in [{allowed}]"
                ),
                "message": message,
                "fieldPath": f".training.hyperparameters.{parameter.api}",
            }
        )
    return rules
