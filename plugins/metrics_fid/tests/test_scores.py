"""FID, KID and IS against direct evaluations of their formulas."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from genforce_metrics_fid import evaluation, scores


def correlated(rng, n, d, shift=0.0):
    mix = rng.normal(size=(d, d)) / math.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + shift


def test_fid_of_a_set_with_itself_is_zero():
    feats = correlated(np.random.default_rng(0), 300, 64)
    assert abs(scores.fid_from_features(feats, feats)) < 1e-6
    assert abs(scores.fid_from_features(feats[:20], feats[:20])) < 1e-6  # low-rank path


def direct_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Means, unbiased covariances, and Tr sqrt(S_a S_b) through the symmetric form
    sqrt(S_a^1/2 S_b S_a^1/2) with eigendecompositions: another route to the same number."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = (a - mu_a).T @ (a - mu_a) / (len(a) - 1)
    cov_b = (b - mu_b).T @ (b - mu_b) / (len(b) - 1)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    eig = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
                 - 2 * np.sum(np.sqrt(np.clip(eig, 0, None))))


@pytest.mark.parametrize('n_a, n_b', [(400, 300), (30, 45)])
def test_fid_matches_a_direct_numpy_scipy_computation(n_a, n_b):
    # (400, 300) > 48 dimensions: scipy.linalg.sqrtm of the statistics (the reference path);
    # (30, 45) < 48: singular covariances, the exact low-rank path.
    rng = np.random.default_rng(1)
    a, b = correlated(rng, n_a, 48), correlated(rng, n_b, 48, shift=0.3)
    ours = scores.fid_from_features(a, b)
    assert ours == pytest.approx(direct_fid(a, b), rel=1e-6)
    assert ours > 1  # the shift shows
    if n_a > 48:
        stats = scores.frechet_distance(*scores.feature_stats(a), *scores.feature_stats(b))
        assert stats == ours


def test_fid_rejects_mismatched_and_degenerate_statistics():
    with pytest.raises(scores.MetricError, match='differ in shape'):
        scores.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(scores.MetricError, match='at least 2 feature vectors'):
        scores.feature_stats(np.zeros((1, 5)))


def test_kid_matches_the_unbiased_mmd_formula():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(6, 5)) + 0.5  # x real, y generated
    d = 5

    def k(a, b):
        return (a @ b / d + 1) ** 3

    # With subsets as large as the smaller set, each subset draws 6 of each (without
    # replacement); with all of x and y of equal size the estimator is the closed formula.
    x6 = x[:6]
    m = 6
    xx = sum(k(x6[i], x6[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x6[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert scores.kernel_inception_distance(x6, y, num_subsets=3) == pytest.approx(
        xx + yy - 2 * xy, rel=1e-10)
    # Subsets: the mean over subsets of the same estimator (reproducible by seed).
    kid = scores.kernel_inception_distance(x, y, num_subsets=5, max_subset_size=4, seed=7)
    assert kid == scores.kernel_inception_distance(x, y, num_subsets=5, max_subset_size=4,
                                                   seed=7)
    # Unbiased: two samples of one distribution score ~0, a shifted one clearly more.
    a, b, c = rng.normal(size=(3, 400, 5))
    same = scores.kernel_inception_distance(a, b, num_subsets=10, max_subset_size=200)
    assert abs(same) < 0.05 < scores.kernel_inception_distance(a, c + 1, num_subsets=10,
                                                               max_subset_size=200)


def test_inception_score_matches_its_formula():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(20, 6)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    splits = []
    for part in np.split(probs, 4):
        py = part.mean(0)
        splits.append(math.exp(np.mean([np.sum(p * np.log(p / py)) for p in part])))
    mean, std = scores.inception_score(logits, num_splits=4)
    assert mean == pytest.approx(np.mean(splits), rel=1e-9)
    assert std == pytest.approx(np.std(splits), rel=1e-9)
    # Uniform predictions give the minimum score 1; confident distinct classes give #classes.
    assert scores.inception_score(np.zeros((10, 6)), 2)[0] == pytest.approx(1.0)
    sure = np.eye(6)[np.arange(12) % 6] * 100
    assert scores.inception_score(sure, 2)[0] == pytest.approx(6.0, rel=1e-6)


@pytest.mark.parametrize('name, expected', [
    ('fid50k_full', ('fid', 50000, None)), ('fid10k', ('fid', 10000, 10000)),
    ('kid50k_full', ('kid', 50000, None)), ('is50k', ('is', 50000, None)),
    ('fid200_full', ('fid', 200, None)),
])
def test_metric_names(name, expected):
    spec = evaluation.parse_metric_name(name)
    assert (spec.kind, spec.num_gen, spec.max_real) == expected and spec.name == name


def test_bad_metric_names_say_what_is_valid():
    with pytest.raises(scores.MetricError, match="unknown metric name 'fid_50k'.*fid50k_full"):
        evaluation.parse_metric_name('fid_50k')
    with pytest.raises(scores.MetricError, match='needs num_gen'):
        evaluation.parse_metric_name('kid')
