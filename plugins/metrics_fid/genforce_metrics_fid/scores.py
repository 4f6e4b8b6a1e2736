"""The formulas: FID, KID and Inception Score from Inception features / logits (NumPy).

* FID (Heusel et al., 2017): ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` with
  float64 means and unbiased covariances; the matrix square root by ``scipy.linalg.sqrtm``.
  As pytorch-fid does: a non-finite square root is retried with ``1e-6`` added to both
  diagonals, and a complex result keeps its real part unless its diagonal has an imaginary
  component above ``1e-3`` (then the statistics are broken and we raise).
* KID (Bińkowski et al., 2018): the unbiased estimator of the squared MMD with the cubic
  polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over ``num_subsets`` random
  subsets of ``min(n_real, n_gen, max_subset_size)`` samples of each set.
* IS (Salimans et al., 2016): ``exp(E_x KL(p(y|x) || p(y)))`` on each of ``num_splits``
  consecutive splits of the generated set; mean and standard deviation over the splits.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from genforce_core.api import GenforceError


class MetricError(GenforceError):
    """A metric cannot be computed from what it was given."""


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (float64) of ``feats [N, D]``."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise MetricError(f'need at least 2 feature vectors [N, D], got {feats.shape}')
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    result = scipy.linalg.sqrtm(matrix)
    return result[0] if isinstance(result, tuple) else result


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between two Gaussians (the FID of their feature statistics)."""
    mu1, mu2 = np.atleast_1d(np.float64(mu1)), np.atleast_1d(np.float64(mu2))
    sigma1, sigma2 = np.atleast_2d(np.float64(sigma1)), np.atleast_2d(np.float64(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MetricError(f'statistics differ in shape: mean {mu1.shape} vs {mu2.shape}, '
                          f'covariance {sigma1.shape} vs {sigma2.shape}')
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            worst = np.max(np.abs(covmean.imag))
            raise MetricError(f'the covariance square root has an imaginary component {worst:.3g}'
                              '; the statistics are degenerate (too few samples?)')
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two feature sets.

    With at least as many samples as dimensions in both sets (the normal case: 50k x 2048)
    this is :func:`frechet_distance` of their statistics, i.e. the reference computation.
    With fewer samples than dimensions the covariances are singular (``sqrtm`` warns and
    loses accuracy, and takes a minute at 2048-d on a small CPU); then the same quantity is
    computed exactly in the samples' span: with centred features ``A`` (n1 x d) and ``B``,
    the non-zero eigenvalues of ``S1 S2`` are the squared singular values of
    ``A B^T / sqrt((n1 - 1)(n2 - 1))``, so ``Tr (S1 S2)^(1/2)`` is that matrix's nuclear norm.
    """
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if min(len(real), len(fake)) >= real.shape[1] + 1:
        return frechet_distance(*feature_stats(real), *feature_stats(fake))
    feature_stats(real), feature_stats(fake)  # the same input checks
    a, b = real - real.mean(axis=0), fake - fake.mean(axis=0)
    n1, n2 = len(a) - 1, len(b) - 1
    diff = real.mean(axis=0) - fake.mean(axis=0)
    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt(n1 * n2)
    return float(diff.dot(diff) + (a * a).sum() / n1 + (b * b).sum() / n2 - 2 * cross)


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> float:
    """KID: mean over subsets of the unbiased MMD^2 with ``k(x, y) = (x.y / d + 1)^3``."""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    dim = real.shape[1]
    m = min(len(real), len(fake), max_subset_size)
    if m < 2:
        raise MetricError(f'KID needs at least 2 samples per set, got {len(real)} real and '
                          f'{len(fake)} generated')
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(len(fake), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        kxx = (x @ x.T / dim + 1) ** 3
        kyy = (y @ y.T / dim + 1) ** 3
        kxy = (x @ y.T / dim + 1) ** 3
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        total += within - 2 * kxy.sum() / (m * m)
    return float(total / num_subsets)


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def inception_score(logits: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score over ``num_splits`` splits of ``logits [N, C]``."""
    probs = softmax(logits)
    n = len(probs)
    if n < num_splits:
        raise MetricError(f'IS with {num_splits} splits needs at least {num_splits} samples, '
                          f'got {n}')
    scores = []
    for i in range(num_splits):
        part = probs[n * i // num_splits: n * (i + 1) // num_splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-30) - np.log(marginal + 1e-30))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
