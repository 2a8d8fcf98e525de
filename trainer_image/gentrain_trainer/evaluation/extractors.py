"""Feature extractors for FID/KID/precision/recall, each with the label it is reported under.

- `domain`: a small CNN classifier trained on the dataset's own labelled images (a few
  seconds on CPU for digits) — features from its penultimate layer, class probabilities
  for the Inception-Score analogue.
- `random_conv`: the same network with fixed random weights, for unlabelled images.
- `inception`: pytorch-fid's InceptionV3 (its 2,048 pool features, the network published
  FIDs use; its 1,008 classes for the Inception Score) when its weights file is on disk
  (see `inception.py`).

`auto` takes `inception` when the weights are there, the domain classifier otherwise.
Figures from different extractors are never comparable, which is why every figure
carries its extractor's name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..datasets import ImageDataset
from . import inception

log = logging.getLogger(__name__)


class SmallCNN(nn.Module):
    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, 128),
            nn.ReLU(),
        )
        self.head = nn.Linear(128, max(classes, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return features, self.head(features)


@dataclass
class Extractor:
    name: str
    network: nn.Module  # images in [-1, 1] -> (features, logits or None)
    has_classes: bool
    held_out_accuracy: float | None = None
    batch: int = 512
    _real: torch.Tensor | None = None

    def real_features(self, data: ImageDataset, limit: int) -> torch.Tensor:
        """The real images' features, computed once per extractor (its data is fixed)."""
        if self._real is None:
            self._real, _ = self(data.train[:limit])
        return self._real

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.network.eval()
        features, logits = [], []
        for chunk in images.float().split(self.batch):
            f, lg = self.network(chunk)
            features.append(f)
            logits.append(lg)
        probs = torch.cat(logits).softmax(1) if self.has_classes else None
        return torch.cat(features), probs


_cache: dict[tuple[str, tuple[int, ...]], Extractor] = {}


def _train_classifier(data: ImageDataset, steps: int = 300) -> Extractor:
    assert data.train_labels is not None
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        network = SmallCNN(data.shape[0], data.classes)
    optimizer = torch.optim.Adam(network.parameters(), lr=2e-3)
    for _ in range(steps):
        idx = torch.randint(len(data.train), (128,), generator=generator)
        _, logits = network(data.train[idx])
        loss = F.cross_entropy(logits, data.train_labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    extractor = Extractor("domain", network, has_classes=True)
    if data.held_out_labels is not None and len(data.held_out):
        _, probs = extractor(data.held_out)
        assert probs is not None
        extractor.held_out_accuracy = float(
            (probs.argmax(1) == data.held_out_labels).float().mean()
        )
    log.info(
        "domain feature extractor trained: held-out accuracy %.3f", extractor.held_out_accuracy or 0
    )
    return extractor


def extractor_for(data: ImageDataset, wanted: str = "auto") -> Extractor:
    if wanted in ("auto", "inception"):
        weights = inception.weights_file()
        if weights is not None:
            key = ("inception", tuple(data.train.shape))
            if key not in _cache:
                _cache[key] = Extractor("inception", inception.load(weights), True, batch=64)
            return _cache[key]
        if wanted == "inception":
            log.warning(
                "evaluation.extractor=inception: no weights file at %s (set %s); "
                "using the domain extractor, and labelling its figures so",
                inception.DEFAULT_PATH,
                inception.ENVIRONMENT,
            )
    key = (data.name, tuple(data.train.shape))
    if key not in _cache:
        if data.train_labels is not None and data.classes > 1:
            _cache[key] = _train_classifier(data)
        else:
            with torch.random.fork_rng():
                torch.manual_seed(0)
                _cache[key] = Extractor(
                    "random_conv", SmallCNN(data.shape[0], 1), has_classes=False
                )
    return _cache[key]
