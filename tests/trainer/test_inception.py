"""The InceptionV3 extractor: used, and labelled `inception`, only where its weights file
is on disk; otherwise the domain classifier, labelled `domain`. The real weights cannot
be downloaded here, so the file is pytorch-fid's exact network with random weights: this
checks the loading and the plumbing, not the published FID values."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from gentrain_trainer.config import Config
from gentrain_trainer.datasets import make_dataset
from gentrain_trainer.datasets.images import ImageDataset
from gentrain_trainer.evaluation import extractors, image_quality, inception


@pytest.fixture
def digits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ImageDataset:
    monkeypatch.setattr(extractors, "_cache", {})
    monkeypatch.setattr(inception, "DEFAULT_PATH", tmp_path / "absent.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(inception.ENVIRONMENT, raising=False)
    data = make_dataset({"name": "digits"}, seed=0)
    assert isinstance(data, ImageDataset)
    return data


def random_weights_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pytorch-fid's FID InceptionV3 with its own random initialisation, saved as the
    published weights file is (a plain state dict)."""
    from pytorch_fid import inception as pytorch_fid

    with monkeypatch.context() as patch:
        patch.setattr(pytorch_fid, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(nn.Module, "load_state_dict", lambda self, state, **k: None)
        network = pytorch_fid.fid_inception_v3()
    torch.save(network.state_dict(), path)
    return path


def config(extractor: str) -> Config:
    return Config(1, "gan", 0, {}, {}, 1, {}, 1, 1, frozenset(), {"extractor": extractor})


def test_without_the_weights_the_domain_extractor_is_used_and_named(
    digits: ImageDataset, caplog: pytest.LogCaptureFixture
) -> None:
    assert extractors.extractor_for(digits, "auto").name == "domain"
    with caplog.at_level(logging.WARNING):
        assert extractors.extractor_for(digits, "inception").name == "domain"
    assert inception.ENVIRONMENT in caplog.text


def test_with_the_weights_file_fid_is_computed_in_inception_space(
    digits: ImageDataset, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    weights = random_weights_file(tmp_path / inception.FILENAME, monkeypatch)
    monkeypatch.setenv(inception.ENVIRONMENT, str(weights))
    monkeypatch.setattr(image_quality, "REAL_SAMPLES", 24)
    extractor = extractors.extractor_for(digits, "auto")
    assert extractor.name == "inception"
    features, probs = extractor(digits.held_out[:3])
    assert features.shape == (3, 2048)
    assert probs is not None and probs.shape == (3, 1008)

    fake = torch.rand(24, *digits.shape) * 2 - 1
    figures = image_quality.evaluate_images(fake, digits, config("auto"))
    assert figures["extractor"] == "inception"
    assert torch.isfinite(torch.tensor([figures["fid"], figures["kid"]])).all()
    assert figures["inception_score"] >= 1.0  # from the 1,008 Inception classes
    # The real images' statistics are computed once per extractor, not per milestone.
    assert extractor.real_features(digits, 24) is extractor.real_features(digits, 24)
