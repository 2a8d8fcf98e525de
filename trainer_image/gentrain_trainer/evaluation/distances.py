"""Distribution metrics on feature vectors: FID, KID, precision/recall, Inception Score.

- FID (Heusel et al., 2017): Fréchet distance between Gaussians fitted to the features.
- KID (Bińkowski et al., 2018): unbiased MMD² with the cubic polynomial kernel, averaged
  over subsets.
- Precision/recall (Kynkäänniemi et al., 2019): k-NN manifolds, k = 3.
- Inception Score (Salimans et al., 2016): exp E[KL(p(y|x) || p(y))].
"""

from __future__ import annotations

import torch


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    return fid_with_stderr(real, fake, resamples=0)[0]


def fid_with_stderr(
    real: torch.Tensor, fake: torch.Tensor, resamples: int = 10
) -> tuple[float, float]:
    """FID and its standard error over the generated samples: the spread of the FID of
    `resamples` bootstrap resamples of the fake features (0: not estimated, NaN). On a
    few hundred samples FID swings from one evaluation to the next by more than a real
    regression; the operator acts on a rise only beyond this uncertainty. The real
    statistics are computed once (thousands of samples, fixed)."""
    real = real.double()
    mu1, s1 = real.mean(0), torch.cov(real.T)
    # Tr sqrt(S1 S2) = sum of sqrt eigenvalues of sqrt(S1) S2 sqrt(S1), which is symmetric.
    vals, vecs = torch.linalg.eigh(s1)
    root = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T

    def distance(x: torch.Tensor) -> float:
        mu2, s2 = x.mean(0), torch.cov(x.T)
        middle = torch.linalg.eigvalsh(root @ s2 @ root).clamp_min(0).sqrt().sum()
        return float((mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * middle)

    fake = fake.double()
    value = distance(fake)
    if resamples < 2:
        return value, float("nan")
    g = torch.Generator().manual_seed(0)
    spread = [
        distance(fake[torch.randint(len(fake), (len(fake),), generator=g)])
        for _ in range(resamples)
    ]
    return value, float(torch.tensor(spread).std())


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 10, subset_size: int = 200) -> float:
    real, fake = real.double(), fake.double()
    d = real.shape[1]
    m = min(subset_size, len(real), len(fake))
    g = torch.Generator().manual_seed(0)
    total = 0.0
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=g)[:m]]
        y = fake[torch.randperm(len(fake), generator=g)[:m]]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        off = 1 - torch.eye(m, dtype=torch.float64)
        total += float(
            (kxx * off).sum() / (m * (m - 1)) + (kyy * off).sum() / (m * (m - 1)) - 2 * kxy.mean()
        )
    return total / subsets


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    def radii(x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values  # +1: the point itself

    def coverage(manifold: torch.Tensor, radius: torch.Tensor, probes: torch.Tensor) -> float:
        inside = torch.cdist(probes, manifold) <= radius[None, :]
        return float(inside.any(dim=1).float().mean())

    real, fake = real.float(), fake.float()
    return coverage(real, radii(real), fake), coverage(fake, radii(fake), real)


def inception_score(probabilities: torch.Tensor) -> float:
    p = probabilities.double().clamp_min(1e-12)
    marginal = p.mean(0, keepdim=True)
    return float(torch.exp((p * (p.log() - marginal.log())).sum(1).mean()))
