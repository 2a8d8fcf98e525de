"""gentrain's contract: what the operator, the built-in trainer and any training program
that reports to gentrain agree on. Torch-free and dependency-free.

- `metrics`: every series a trainer exports (name, type, labels, meaning).
- `hyperparameters`: the catalogue (API name, trainer name, type, bounds, defaults per
  family), from which the CRD's hyperparameter block is generated.
- `vocabulary`: families, findings, actions, commands and phases.
"""
