"""InceptionV3 as published FIDs use it: pytorch-fid's network and weights file
(`pt_inception-2015-12-05-6726825d.pth`, the TensorFlow FID graph ported to PyTorch).

Nothing is downloaded: the weights are read from $GENTRAIN_INCEPTION_WEIGHTS, else from
DEFAULT_PATH (bake the file into the image there, or mount it), else from torch's hub
cache where pytorch-fid itself would have put it. Without the file, no Inception figure
is reported.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

log = logging.getLogger(__name__)

FILENAME = "pt_inception-2015-12-05-6726825d.pth"
ENVIRONMENT = "GENTRAIN_INCEPTION_WEIGHTS"
DEFAULT_PATH = Path("/opt/gentrain/inception") / FILENAME


def weights_file() -> Path | None:
    candidates = [
        os.environ.get(ENVIRONMENT),
        DEFAULT_PATH,
        Path(torch.hub.get_dir()) / "checkpoints" / FILENAME,
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


class InceptionFeatures(nn.Module):
    """Images in [-1, 1], any size, 1 or 3 channels -> the 2,048 pool features FID uses
    and the 1,008 class logits the Inception Score uses, in one pass."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self._pool: torch.Tensor | None = None
        pool = network.avgpool
        assert isinstance(pool, nn.Module)
        pool.register_forward_hook(self._keep_pool)

    def _keep_pool(self, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        self._pool = output

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        # As pytorch-fid: bilinear resize to 299x299 of the images in [-1, 1].
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        logits: torch.Tensor = self.network(x)
        assert self._pool is not None
        return self._pool.flatten(1), logits


def build(weights: Path) -> nn.Module:
    """pytorch-fid's FID InceptionV3 (TensorFlow's graph: patched blocks, 1,008 classes),
    its state read from `weights`."""
    from pytorch_fid import inception as pytorch_fid

    def from_file(url: str, progress: bool = True) -> dict[str, torch.Tensor]:
        state: dict[str, torch.Tensor] = torch.load(weights, map_location="cpu", weights_only=True)
        return state

    original = pytorch_fid.load_state_dict_from_url
    pytorch_fid.load_state_dict_from_url = from_file  # where pytorch-fid would download it
    try:
        network: nn.Module = pytorch_fid.fid_inception_v3()
    finally:
        pytorch_fid.load_state_dict_from_url = original
    return network


def load(weights: Path) -> InceptionFeatures:
    log.info("feature extractor: InceptionV3 (pytorch-fid) with weights from %s", weights)
    return InceptionFeatures(build(weights).eval())
