"""Generative-audio metrics on hand-computed cases, and the protocol's mel features against librosa."""

import librosa
import numpy as np
import pytest
import torch

from seqmamba.metrics import (
    am_score,
    fid,
    frechet_distance,
    inception_score,
    inception_score_halves,
    likelihood_filter,
    modified_inception_score,
    ndb,
)
from seqmamba.metrics.mel_features import MelFeatures, MelSettings


def one_hot_uniform(per_class: int = 100, classes: int = 10) -> np.ndarray:
    return np.eye(classes)[np.repeat(np.arange(classes), per_class)]


def test_confident_balanced_predictions_reach_the_ceiling():
    probs = one_hot_uniform()
    assert inception_score(probs) == pytest.approx(10.0, rel=1e-9)
    assert inception_score_halves(probs) == pytest.approx(10.0, abs=0.5)  # the halves are only near uniform
    assert modified_inception_score(probs) > 1e9  # two different one-hot predictions are far apart
    assert am_score(probs, probs) == pytest.approx(0.0, abs=1e-9)


def test_identical_or_unsure_predictions_score_one():
    same = np.tile([0.7, 0.2, 0.1], (50, 1))
    assert inception_score(same) == pytest.approx(1.0)
    assert inception_score_halves(same) == pytest.approx(1.0)
    assert modified_inception_score(same) == pytest.approx(1.0)


def test_am_adds_class_imbalance_and_mean_entropy():
    unsure = np.full((10, 2), 0.5)
    assert am_score(unsure, unsure) == pytest.approx(np.log(2))
    reference = np.array([[1.0, 0.0], [0.0, 1.0]])  # p_ref(y) = (1/2, 1/2)
    skewed = np.array([[0.75, 0.25]] * 4)  # p(y) = (3/4, 1/4), entropy H(3/4)
    kl = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)
    entropy = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert am_score(reference, skewed) == pytest.approx(kl + entropy)


def test_fid_of_identical_sets_is_zero_and_of_a_known_pair_is_closed_form():
    features = np.random.default_rng(0).standard_normal((200, 16))
    assert fid(features, features) == pytest.approx(0.0, abs=1e-8)
    mu1, sigma1 = np.array([1.0, 2.0]), np.array([[2.0, 1.0], [1.0, 2.0]])  # eigenvalues 3, 1
    mu2, sigma2 = np.array([0.0, 0.0]), np.eye(2)
    expected = 5.0 + 4.0 + 2.0 - 2 * (np.sqrt(3.0) + 1.0)  # ||mu||^2 + tr S1 + tr S2 - 2 tr S1^1/2
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-10)
    diag1, diag2 = np.diag([4.0, 9.0]), np.diag([1.0, 16.0])
    assert frechet_distance(mu2, diag1, mu2, diag2) == pytest.approx((2 - 1) ** 2 + (3 - 4) ** 2)


def test_fid_stays_real_with_fewer_clips_than_dimensions():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((20, 64)), rng.standard_normal((20, 64)) + 1.0
    value = fid(a, b)
    assert np.isfinite(value) and value > 64 * 0.5  # the mean shift alone contributes ~64


def test_ndb_is_zero_for_identical_sets_and_high_for_a_collapsed_one():
    rng = np.random.default_rng(2)
    reference = rng.standard_normal((500, 8))
    assert ndb(reference, reference, bins=10) == 0.0
    collapsed = np.tile(reference[:1], (500, 1))  # every sample in one bin
    assert ndb(reference, collapsed, bins=10) == 1.0
    with pytest.raises(ValueError, match="at least 50"):
        ndb(reference[:20], reference[:20])


def test_likelihood_filter_drops_lowest_40_and_highest_5_percent():
    log_likelihoods = np.random.default_rng(3).permutation(100).astype(float)
    keep = likelihood_filter(log_likelihoods)
    assert keep.sum() == 55
    assert sorted(log_likelihoods[keep]) == list(range(40, 95))
    assert likelihood_filter(log_likelihoods, drop_low=0.0, drop_high=0.0).all()
    with pytest.raises(ValueError):
        likelihood_filter(log_likelihoods, drop_low=0.6, drop_high=0.5)


def test_mel_features_equal_librosa_and_are_32_by_32():
    rng = np.random.default_rng(4)
    clips = (rng.standard_normal((3, 16000)) * np.linspace(0, 0.5, 16000)).astype(np.float32)
    clips[2] = 0.0  # silence: 0 dB everywhere, as librosa gives
    ours = MelFeatures()(torch.from_numpy(clips)).numpy()
    assert ours.shape == (3, 1, 32, 32) and MelSettings().frames == 32
    for clip, image in zip(clips, ours):
        mel = librosa.feature.melspectrogram(y=clip, sr=16000, n_mels=32, n_fft=2048, hop_length=512)
        np.testing.assert_allclose(image[0], librosa.power_to_db(mel, ref=np.max), atol=1e-3)
