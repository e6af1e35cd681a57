"""Baseline for species classification: k-mer counts (k = 4..8) with logistic regression, on the model's windows.

The training windows are the first `--train-windows` balanced windows the fine-tuning run would see
(same seed), the test windows the fixed held-out ones: the same windows and splits as `seqmamba
finetune`. Beside it, exact k-mer matching against the training regions (Kraken-style, k = 31).
k-mers are canonical (a k-mer and its reverse complement count as one), since windows
come from either strand; a k-mer holding N is skipped. Counts become frequencies, then standardised.

Usage: python pipelines/baselines/kmer_species.py --manifest data/cache/apes/species.tsv --seq-len 1024 [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from seqmamba.data.tokenizer import A, T, encode
from seqmamba.tasks.species_data import SpeciesDataModule

TRAIN_TOKEN_BUDGET = 1 << 25  # bases of training windows at most: keeps k-mer tables in memory at long L


def canonical_kmers(windows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, L) token ids -> ((N, L - k + 1) canonical k-mer codes, mask of those without N); k <= 31 fits int64."""
    codes = windows.astype(np.int64) - A  # A C G T -> 0..3, anything else out of range
    valid = (windows >= A) & (windows <= T)
    n, length = codes.shape
    forward = np.zeros((n, length - k + 1), dtype=np.int64)
    backward = np.zeros_like(forward)
    ok = np.ones_like(forward, dtype=bool)
    for j in range(k):
        part = codes[:, j : length - k + 1 + j].clip(0, 3)
        forward = forward * 4 + part
        backward += (3 - part) * 4**j  # the reverse complement's index, built from the same bases
        ok &= valid[:, j : length - k + 1 + j]
    return np.minimum(forward, backward), ok


def kmer_frequencies(windows: np.ndarray, k: int) -> scipy.sparse.csr_matrix:
    """(N, L) token ids -> (N, 4^k) canonical k-mer frequencies, sparse."""
    canonical, ok = canonical_kmers(windows, k)
    n = len(windows)
    rows = np.broadcast_to(np.arange(n)[:, None], canonical.shape)[ok]
    counts = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, canonical[ok])), shape=(n, 4**k)).tocsr()
    totals = np.asarray(counts.sum(axis=1)).clip(min=1)
    return scipy.sparse.csr_matrix(counts.multiply(1 / totals))


def exact_match_accuracy(data: SpeciesDataModule, windows: np.ndarray, labels: np.ndarray,
                         k: int = 31) -> tuple[float, float]:
    """Kraken-style exact matching: call the species owning most of a window's k-mers found in one species only.

    The k-mer sets are every canonical k-mer of each species' training regions. Returns (accuracy,
    fraction of windows called); a window with no such k-mer is left uncalled and scores as a
    guess would (1 / species).
    """
    owners = []  # per species: sorted unique k-mers of its training regions
    for genome, regions in zip(data.genomes, data.split_regions("train")):
        found = [canonical_kmers(encode(genome.fetch(a, b))[None, :], k) for a, b in regions if b - a >= k]
        owners.append(np.unique(np.concatenate([codes[ok] for codes, ok in found])))
    codes, ok = canonical_kmers(windows, k)
    rows = np.broadcast_to(np.arange(len(windows))[:, None], codes.shape)[ok]
    codes = codes[ok]
    member = np.stack([s[np.searchsorted(s, codes).clip(max=len(s) - 1)] == codes for s in owners])  # (S, K)
    single = member.sum(axis=0) == 1
    votes = np.stack([np.bincount(rows[single & m], minlength=len(windows)) for m in member])  # (S, N)
    called = votes.max(axis=0) > 0
    return float(np.where(called, votes.argmax(axis=0) == labels, 1 / len(owners)).mean()), float(called.mean())


def stacked(dataset, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` (window, label) items of a dataset as arrays."""
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    return np.stack([w.numpy() for w, _ in items]), np.array([label for _, label in items])


def kmer_baseline(data: SpeciesDataModule, ks: list[int], train_windows: int = 4096, exact_k: int = 31) -> dict:
    """Held-out accuracy of k-mer logistic regression per k (and of exact k-mer matching), on the model's windows."""
    data.setup("fit")
    data.setup("test")
    count = min(train_windows, max(len(data.classes), TRAIN_TOKEN_BUDGET // data.hparams.seq_len))
    x_train, y_train = stacked(data.train_windows(), count)
    x_test, y_test = stacked(data.fixed_windows("test"), len(data.fixed_windows("test")))
    accuracy = {}
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter caps the time; the fit is near enough
    for k in ks:
        model = make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=0.1, max_iter=300))
        model.fit(kmer_frequencies(x_train, k), y_train)
        accuracy[f"k{k}"] = float((model.predict(kmer_frequencies(x_test, k)) == y_test).mean())
    if exact_k:
        accuracy[f"exact{exact_k}"], called = exact_match_accuracy(data, x_test, y_test, exact_k)
    return {"accuracy": accuracy, **({f"exact{exact_k}_called": called} if exact_k else {}),
            "train_windows": len(y_train), "test_windows": len(y_test),
            "chance": 1 / len(data.classes), "seq_len": data.hparams.seq_len}


def main(argv: list[str] | None = None) -> dict:
    """Command line: print (and optionally write) the baseline's accuracies as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--k", type=int, nargs="+", default=[4, 5, 6, 7, 8])
    parser.add_argument("--train-windows", type=int, default=4096)
    parser.add_argument("--test-windows", type=int, default=256, help="per species, as data.test_windows")
    parser.add_argument("--exact-k", type=int, default=31, help="k of the exact-matching baseline (0: skip it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    started = time.time()
    data = SpeciesDataModule(args.manifest, seq_len=args.seq_len, test_windows=args.test_windows, seed=args.seed)
    result = {**kmer_baseline(data, args.k, args.train_windows, args.exact_k), "seconds": round(time.time() - started, 1)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    sys.exit(main() and 0)
