"""A decoder-only transformer on bytes (nanoGPT-shaped, pre-LayerNorm).

Live: peak and minimum learning rate, warm-up, weight decay, clipping, z-loss (PaLM's
auxiliary log-partition penalty), Adam beta2. Optional qk-LayerNorm (Dehghani et al.,
2023) is architectural and fixed for the run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..config import Config
from ..datasets import Dataset, TextDataset
from ..evaluation import pictures
from .base import Family, ModelConfigError, NextBatch, StepResult, clip_and_measure, set_lr


def learning_rate(step: int, peak: float, minimum: float, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to `minimum` at `total` steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if step >= total:
        return minimum
    progress = (step - warmup) / max(1, total - warmup)
    return minimum + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - minimum)


def attention_entropy_ratio(attention: torch.Tensor) -> float:
    """How spread a causal attention is: its rows' entropy over the most they could have
    (uniform over the keys each query may see, log(i + 1) at position i), as a ratio of
    sums over every row of `attention` (..., t, t). 1: uniform; near 0: every query looks
    at a single key. Entropy collapse (Zhai et al., 2023) is this near 0 in every layer:
    a rate far too high drives attention logits up until the heads are one-hot, and the
    run trains on, badly, without a loss rule seeing a fault."""
    t = attention.shape[-1]
    spread = -(attention * attention.clamp_min(1e-12).log()).sum(-1)  # (..., t)
    rows = spread.reshape(-1, t).mean(0)
    most = torch.log(torch.arange(1, t + 1, dtype=rows.dtype, device=rows.device))
    return float(rows.sum() / most.sum().clamp_min(1e-12))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, qk_norm: bool) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        head_dim = width // heads
        self.q_norm = nn.LayerNorm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(head_dim) if qk_norm else nn.Identity()
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )
        self.last_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, keep_attention: bool = False) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (
            self.qkv(self.ln1(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        )
        q, k = self.q_norm(q), self.k_norm(k)
        if keep_attention:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            scores = scores.masked_fill(
                torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float("-inf")
            )
            attention = scores.softmax(-1)
            self.last_attention = attention.detach()
            y = attention @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        out: torch.Tensor = x + self.mlp(self.ln2(x))
        return out


class GPT(nn.Module):
    def __init__(
        self, vocab: int, block_size: int, width: int, layers: int, heads: int, qk_norm: bool
    ) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Embedding(block_size, width)
        self.blocks = nn.ModuleList(Block(width, heads, qk_norm) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.token.weight  # tied, as in GPT-2
        # GPT-2's initialisation: N(0, 0.02) everywhere, the projections back into the
        # residual stream scaled by 1/sqrt(2 * layers). PyTorch's default N(0, 1) for the
        # (tied) embedding put the first loss near 80 nats for a 4.6-nat uniform guess.
        for name, parameter in self.named_parameters():
            if parameter.dim() < 2:
                continue
            std = (
                0.02 / math.sqrt(2 * layers)
                if name.endswith(("proj.weight", "mlp.2.weight"))
                else 0.02
            )
            nn.init.normal_(parameter, 0.0, std)
        for module in self.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, keep_attention: bool = False) -> torch.Tensor:
        x = self.token(idx) + self.position(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x, keep_attention)
        out: torch.Tensor = self.head(self.ln(x))
        return out


class Transformer(Family):
    name = "transformer"
    has_held_out_loss = True

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config.hyperparameters)
        if not isinstance(dataset, TextDataset):
            raise ModelConfigError(
                "model: the transformer family trains on text (data.name: pydoc or text)"
            )
        self.config, self.dataset, self.device = config, dataset, device
        m = config.model
        width, heads = int(m.get("width", 128)), int(m.get("heads", 4))
        if width % heads:
            raise ModelConfigError(
                f"model.width ({width}) must be a multiple of model.heads ({heads})"
            )
        torch.manual_seed(config.seed)
        self.model = GPT(
            dataset.vocab_size,
            dataset.block_size,
            width,
            int(m.get("layers", 2)),
            heads,
            bool(m.get("qk_layernorm", False)),
        ).to(device)
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": float(self.hp["weight_decay"])},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=float(self.hp["lr"]),
            betas=(0.9, float(self.hp["beta2"])),
        )

    def lr_at(self, step: int) -> float:
        return learning_rate(
            step,
            float(self.hp["lr"]),
            float(self.hp["min_lr"]),
            int(self.hp["warmup_steps"]),
            self.config.max_steps,
        )

    def components(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def baseline_loss(self) -> float | None:
        # Predicting every byte from its frequency alone: the text's unigram entropy (nats).
        counts = torch.bincount(self.dataset.train.long(), minlength=self.dataset.vocab_size)
        p = counts[counts > 0].double() / counts.sum()
        return float(-(p * p.log()).sum())

    def train_step(self, next_batch: NextBatch, step: int) -> StepResult:
        batch = next_batch().to(self.device)
        lr = self.lr_at(step)
        set_lr(self.optimizer, lr)
        logits = self.model(batch.x)
        assert batch.labels is not None
        ce = F.cross_entropy(logits.flatten(0, 1).float(), batch.labels.flatten())
        loss = ce
        if float(self.hp["z_loss"]) > 0:
            loss = (
                loss + float(self.hp["z_loss"]) * torch.logsumexp(logits.float(), -1).pow(2).mean()
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm, clipped = clip_and_measure(self.model.parameters(), float(self.hp["grad_clip"]))
        self.optimizer.step()
        return StepResult(
            losses={"model": float(ce.detach())},
            grad_norms={"model": norm},
            clipped={"model": clipped},
            learning_rates={"model": lr},
        )

    def apply_hyperparameters(self, values: dict[str, Any], step: int) -> None:
        super().apply_hyperparameters(values, step)
        self.optimizer.param_groups[0]["weight_decay"] = float(values["weight_decay"])
        for group in self.optimizer.param_groups:
            group["betas"] = (0.9, float(values["beta2"]))

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    @torch.no_grad()
    def held_out_loss(self, step: int) -> float | None:
        """Cross-entropy on the validation batches (the same windows on every call)."""
        self.model.eval()
        try:
            batches = self.dataset.validation_batches(
                self.config.batch_size, int(self.config.evaluation.get("batches", 8))
            )
            losses = []
            for batch in batches:
                batch = batch.to(self.device)
                assert batch.labels is not None
                logits = self.model(batch.x)
                losses.append(
                    float(F.cross_entropy(logits.flatten(0, 1).float(), batch.labels.flatten()))
                )
        finally:
            self.model.train()
        return sum(losses) / len(losses)

    @torch.no_grad()
    def attention_spread(self) -> float:
        """The mean over layers of `attention_entropy_ratio` on a validation batch."""
        batch = self.dataset.validation_batches(self.config.batch_size, 1)[0].to(self.device)
        self.model.eval()
        try:
            self.model(batch.x, keep_attention=True)
        finally:
            self.model.train()
        ratios = []
        for block in self.model.blocks:
            assert isinstance(block, Block) and block.last_attention is not None
            ratios.append(attention_entropy_ratio(block.last_attention))
            block.last_attention = None  # (b, heads, t, t): not kept between milestones
        return sum(ratios) / len(ratios)

    def evaluate(self, step: int) -> dict[str, Any]:
        validation = self.held_out_loss(step)
        assert validation is not None
        return {
            "validation_loss": validation,
            "perplexity": math.exp(min(validation, 50.0)),
            "attention_entropy_ratio": self.attention_spread(),
        }

    @torch.no_grad()
    def pictures(self, directory: Path, step: int) -> list[Path]:
        batch = self.dataset.validation_batches(1, 1)[0].to(self.device)
        self.model.eval()
        self.model(batch.x[:, :32], keep_attention=True)
        self.model.train()
        block = self.model.blocks[-1]
        assert isinstance(block, Block)
        last = block.last_attention
        assert last is not None
        path = directory / "attention.png"
        pictures.heatmaps(path, last[0].float().cpu(), scale=6)
        return [path]
