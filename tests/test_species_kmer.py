"""The k-mer baseline's features: canonical (strand-free) k-mer frequencies that skip N."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from seqmamba.data.tokenizer import N, encode, reverse_complement

_SPEC = importlib.util.spec_from_file_location(
    "kmer_species", Path(__file__).parents[1] / "pipelines" / "baselines" / "kmer_species.py")
kmer_species = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(kmer_species)


def test_canonical_kmers_are_the_same_on_both_strands():
    rng = np.random.default_rng(0)
    windows = rng.integers(4, 8, size=(3, 50)).astype(np.uint8)
    for k in (1, 4, 6):
        forward = kmer_species.kmer_frequencies(windows, k).toarray()
        backward = kmer_species.kmer_frequencies(reverse_complement(windows), k).toarray()
        assert np.allclose(forward, backward) and np.allclose(forward.sum(axis=1), 1)


def test_kmer_counts_skip_n_and_count_each_kmer():
    window = encode("AACNAAC")[None, :]  # 2-mers: AA AC (CN NA skipped) AA AC
    frequencies = kmer_species.kmer_frequencies(window, 2).toarray()[0]
    aa, ac = 0 * 4 + 0, 0 * 4 + 1  # AA is canonical (TT is larger); AC is canonical (GT larger)
    assert frequencies[aa] == 0.5 and frequencies[ac] == 0.5 and window[0, 3] == N


def test_exact_matching_recognises_training_windows_and_not_unrelated_ones(tmp_path):
    from species_fixtures import make_species

    from seqmamba.tasks.species_data import SpeciesDataModule

    data = SpeciesDataModule(str(make_species(tmp_path, n_species=3, n_records=12)), seq_len=100)
    data.setup("fit")
    windows, labels = kmer_species.stacked(data.train_windows(), 30)
    assert kmer_species.exact_match_accuracy(data, windows, labels, k=15) == (1.0, 1.0)
    rng = np.random.default_rng(1)
    unrelated = rng.integers(4, 8, size=(6, 100)).astype(np.uint8)
    assert kmer_species.exact_match_accuracy(data, unrelated, np.zeros(6, dtype=int), k=15) == (1 / 3, 0.0)  # guesses
