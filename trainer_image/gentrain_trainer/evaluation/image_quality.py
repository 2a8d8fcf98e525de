"""Quality of generated images against the real ones, in one extractor's feature space."""

from __future__ import annotations

from typing import Any

import torch

from ..config import Config
from ..datasets import ImageDataset
from . import distances
from .extractors import extractor_for

REAL_SAMPLES = 5000  # real images whose features make the reference statistics


def evaluate_images(fake: torch.Tensor, data: ImageDataset, config: Config) -> dict[str, Any]:
    extractor = extractor_for(data, str(config.evaluation.get("extractor", "auto")))
    real_features = extractor.real_features(data, REAL_SAMPLES)
    fake_features, fake_probs = extractor(fake.clamp(-1, 1))
    if not torch.isfinite(fake_features).all():
        return {"extractor": extractor.name, "fid": float("nan"), "kid": float("nan")}
    precision, recall = distances.precision_recall(real_features[:2000], fake_features[:2000])
    fid, fid_stderr = distances.fid_with_stderr(real_features, fake_features)
    result: dict[str, Any] = {
        "extractor": extractor.name,
        "fid": fid,
        "fid_stderr": fid_stderr,
        "kid": distances.kid(real_features, fake_features),
        "precision": precision,
        "recall": recall,
    }
    if fake_probs is not None:
        result["inception_score"] = distances.inception_score(fake_probs)
    return result
