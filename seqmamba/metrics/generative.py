"""Scores of generated clips from a classifier's view of them (the SaShiMi / DiffWave SC09 protocol).

Pure functions on arrays: `probs` are (N, C) class probabilities p(y|x), `features` (N, D)
penultimate activations. KL terms clip the second distribution at EPS, so a one-hot prediction
gives a large finite score rather than inf.
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr
from scipy.stats import norm
from sklearn.cluster import KMeans

EPS = 1e-12


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) in nats along the last axis, with q floored at EPS."""
    return rel_entr(p, np.maximum(q, EPS)).sum(axis=-1)


def _as_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError(f"expected (N, C) probabilities with N >= 1, got shape {probs.shape}")
    return probs


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features, the Gaussian FID compares."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"a Gaussian fit needs (N, D) features with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix; tiny negative eigenvalues (round-off) -> 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2), with tr (S1 S2)^1/2 = tr (S1^1/2 S2 S1^1/2)^1/2.

    The symmetric form needs only eigen-decompositions of PSD matrices, so singular covariances
    (fewer clips than dimensions) give a real, finite value where scipy.linalg.sqrtm can go complex.
    """
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_covmean
    return float(max(distance, 0.0))


def fid(reference_features: np.ndarray, sample_features: np.ndarray) -> float:
    """Frechet distance between Gaussian fits of two (N, D) feature sets."""
    return frechet_distance(*gaussian_fit(reference_features), *gaussian_fit(sample_features))


def inception_score(probs: np.ndarray) -> float:
    """IS = exp(E_x KL(p(y|x) || p(y))), p(y) the mean prediction over all clips."""
    probs = _as_probs(probs)
    return float(np.exp(_kl(probs, probs.mean(axis=0)).mean()))


def inception_score_halves(probs: np.ndarray, seed: int = 0) -> float:
    """The SaShiMi scorer's IS: shuffle (seed 0), KL of the first half's p(y|x) to the second half's p(y)."""
    probs = _as_probs(probs)
    if len(probs) < 2:
        raise ValueError("the two-halves IS needs at least 2 clips")
    shuffled = probs[np.random.default_rng(seed).permutation(len(probs))]
    first, second = shuffled[: len(probs) // 2], shuffled[len(probs) // 2:]
    return float(np.exp(_kl(first, second.mean(axis=0)).mean()))


def modified_inception_score(probs: np.ndarray, pairs: int = 10000, seed: int = 0) -> float:
    """mIS = exp(E_{x,x'} KL(p(y|x) || p(y|x'))) over `pairs` random pairs (with replacement)."""
    probs = _as_probs(probs)
    first, second = np.random.default_rng(seed).integers(0, len(probs), size=(2, pairs))
    return float(np.exp(_kl(probs[first], probs[second]).mean()))


def am_score(reference_probs: np.ndarray, probs: np.ndarray) -> float:
    """AM = KL(p_ref(y) || p(y)) + E_x H(p(y|x)): wrong class balance and unsure predictions both cost."""
    reference_probs, probs = _as_probs(reference_probs), _as_probs(probs)
    mean_entropy = -np.sum(probs * np.log(np.maximum(probs, EPS)), axis=1).mean()
    return float(_kl(reference_probs.mean(axis=0), probs.mean(axis=0)) + mean_entropy)


def two_proportion_z_test(p1: np.ndarray, n1: int, p2: np.ndarray, n2: int, alpha: float = 0.05) -> np.ndarray:
    """Per bin, whether proportions p1 (of n1) and p2 (of n2) differ at level alpha (two-sided)."""
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p1 - p2) / se, 0.0)  # se = 0: both proportions 0 (or 1), no difference
    return 2 * norm.cdf(-np.abs(z)) < alpha


def ndb(reference_features: np.ndarray, sample_features: np.ndarray, bins: int = 50, alpha: float = 0.05,
        seed: int = 0) -> float:
    """Number of statistically different bins / bins: k-means bins of the reference, one z-test per bin."""
    reference_features = np.asarray(reference_features, dtype=np.float64)
    sample_features = np.asarray(sample_features, dtype=np.float64)
    if len(reference_features) < bins:
        raise ValueError(f"NDB with {bins} bins needs at least {bins} reference clips, got {len(reference_features)}")
    kmeans = KMeans(n_clusters=bins, random_state=seed, n_init=1).fit(reference_features)
    reference_share = np.bincount(kmeans.labels_, minlength=bins) / len(reference_features)
    sample_share = np.bincount(kmeans.predict(sample_features), minlength=bins) / len(sample_features)
    different = two_proportion_z_test(reference_share, len(reference_features), sample_share, len(sample_features),
                                      alpha)
    return float(different.mean())


def likelihood_filter(log_likelihoods: np.ndarray, drop_low: float = 0.4, drop_high: float = 0.05) -> np.ndarray:
    """Boolean mask keeping clips between the `drop_low` and `1 - drop_high` log-likelihood quantiles.

    The autoregressive protocol: the least likely clips are mostly noise, the most likely mostly silence.
    """
    log_likelihoods = np.asarray(log_likelihoods, dtype=np.float64)
    if not (0 <= drop_low and 0 <= drop_high and drop_low + drop_high < 1):
        raise ValueError(f"drop_low and drop_high must be >= 0 with a sum below 1, got {drop_low}, {drop_high}")
    n = len(log_likelihoods)
    order = np.argsort(log_likelihoods, kind="stable")  # ascending
    keep = np.zeros(n, dtype=bool)
    keep[order[int(np.floor(drop_low * n)): n - int(np.floor(drop_high * n))]] = True
    return keep
