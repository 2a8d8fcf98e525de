"""Report a training loop to gentrain: `Reporter` publishes its
losses, gradient norms, learning rates and milestone summaries on gentrain's metric
contract, so that the operator diagnoses and remediates it like its built-in trainer."""

from .reporter import Reporter
from .torch_loop import follow

__all__ = ["Reporter", "follow"]
