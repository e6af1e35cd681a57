"""Calibration of class probabilities: temperature scaling (Guo et al. 2017), expected calibration error, and
accuracy with the share of reads called at confidence thresholds (as DeepMicrobes reports them).

Temperature scaling divides logits by one number T fitted to minimise the negative log-likelihood of
held-out labels; it leaves every argmax (every call) as it was and only makes a stated probability
mean what it says. Pure functions on arrays.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

THRESHOLDS = (0.5, 0.7, 0.9)


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (len(logits),) or not len(labels):
        raise ValueError(f"expected logits (N, C) and labels (N,) with N > 0, got {logits.shape} and {labels.shape}")
    return logits, labels


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The T in [bounds] minimising the mean NLL of softmax(logits / T) on held-out (logits, labels)."""
    logits, labels = _check(logits, labels)

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean())

    found = minimize_scalar(nll, bounds=np.log(bounds), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by the bins' reads."""
    probs, labels = _check(probs, labels)
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)  # (N,) bin of each read
    error = 0.0
    for b in np.unique(which):
        members = which == b
        error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def called_at(probs: np.ndarray, labels: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS) -> dict[str, dict]:
    """Per threshold: the share of reads whose top probability reaches it, and the accuracy of those calls."""
    probs, labels = _check(probs, labels)
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    out = {}
    for threshold in thresholds:
        called = confidence >= threshold
        out[f"{threshold:g}"] = {"called": float(called.mean()),
                                 "accuracy": float(correct[called].mean()) if called.any() else None}
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64), axis=1))


def calibration_summary(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    """Accuracy, ECE before and after dividing raw logits by `temperature`, and calls at 0.5/0.7/0.9 after."""
    logits, labels = _check(logits, labels)
    before, after = softmax(logits), softmax(logits / temperature)
    return {"accuracy": float((logits.argmax(axis=1) == labels).mean()), "temperature": temperature,
            "ece_before": expected_calibration_error(before, labels),
            "ece_after": expected_calibration_error(after, labels), "called_at": called_at(after, labels)}
