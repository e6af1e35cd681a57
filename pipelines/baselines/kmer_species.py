"""Baseline for species classification: k-mer counts (k = 4..8) with logistic regression, on the model's windows.

The training windows are the first `--train-windows` balanced windows the fine-tuning run would see
(same seed, same lengths: log-uniform from `--min-len` to `--seq-len`), the test windows the fixed
held-out ones at every read length of `--lengths` (default: `seqmamba finetune`'s test lengths): the
same windows and splits as `seqmamba finetune`. Beside it, exact k-mer matching against the training
regions (Kraken-style, k = 31). k-mers are canonical (a k-mer and its reverse complement count as one),
since windows come from either strand; a k-mer holding N is skipped. Counts become frequencies, then
standardised. Bad input (a manifest, a genome too short for the lengths) ends in one line and exit 2.

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
from seqmamba.errors import InputError
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


def by_length(windows: np.ndarray | list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Windows of any lengths as (item indices, (n, L) stacked windows) per length: the k-mer code works per length."""
    if isinstance(windows, np.ndarray):
        return [(np.arange(len(windows)), windows)]
    lengths = np.array([len(w) for w in windows])
    return [(np.flatnonzero(lengths == length), np.stack([windows[i] for i in np.flatnonzero(lengths == length)]))
            for length in np.unique(lengths)]


def kmer_frequencies(windows: np.ndarray | list[np.ndarray], k: int) -> scipy.sparse.csr_matrix:
    """(N, L) token ids, or N windows of any lengths -> (N, 4^k) canonical k-mer frequencies, sparse."""
    if not isinstance(windows, np.ndarray):
        groups = by_length(windows)
        order = np.argsort(np.concatenate([items for items, _ in groups]))
        return scipy.sparse.vstack([kmer_frequencies(group, k) for _, group in groups]).tocsr()[order]
    canonical, ok = canonical_kmers(windows, k)
    n = len(windows)
    rows = np.broadcast_to(np.arange(n)[:, None], canonical.shape)[ok]
    counts = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, canonical[ok])), shape=(n, 4**k)).tocsr()
    totals = np.asarray(counts.sum(axis=1)).clip(min=1)
    return scipy.sparse.csr_matrix(counts.multiply(1 / totals))


def exact_match_accuracy(data: SpeciesDataModule, windows: np.ndarray | list[np.ndarray], labels: np.ndarray,
                         k: int = 31) -> tuple[float, float]:
    """Kraken-style exact matching: call the species owning most of a window's k-mers found in one species only.

    The k-mer sets are every canonical k-mer of each species' training regions. Returns (accuracy,
    fraction of windows called); a window with no such k-mer is left uncalled and scores as a
    guess would (1 / species).
    """
    owners = []  # per species: sorted unique k-mers of its training regions
    for genome, regions in zip(data.genomes, data.split_regions("train")):
        found = [canonical_kmers(encode(genome.fetch(a, b))[None, :], k) for a, b in regions if b - a >= k]
        owners.append(np.unique(np.concatenate([codes[ok] for codes, ok in found] + [np.zeros(0, np.int64)])))
    rows, codes = [], []
    for items, group in by_length(windows):
        group_codes, ok = canonical_kmers(group, k)
        rows.append(np.broadcast_to(items[:, None], group_codes.shape)[ok])
        codes.append(group_codes[ok])
    rows, codes = np.concatenate(rows), np.concatenate(codes)
    owners = [s if len(s) else np.full(1, -1) for s in owners]  # no k-mers: matches nothing
    member = np.stack([s[np.searchsorted(s, codes).clip(max=len(s) - 1)] == codes for s in owners])  # (S, K)
    single = member.sum(axis=0) == 1
    votes = np.stack([np.bincount(rows[single & m], minlength=len(windows)) for m in member])  # (S, N)
    called = votes.max(axis=0) > 0
    return float(np.where(called, votes.argmax(axis=0) == labels, 1 / len(owners)).mean()), float(called.mean())


def stacked(dataset, count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The first `count` (window, label) items of a dataset: windows (any lengths) and labels."""
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    return [w.numpy() for w, _ in items], np.array([label for _, label in items])


def kmer_baseline(data: SpeciesDataModule, ks: list[int], train_windows: int = 4096, exact_k: int = 31) -> dict:
    """Held-out accuracy of k-mer logistic regression per k (and of exact matching) per read length."""
    data.setup("fit")
    mean_length = (data.hparams.seq_len + data.hparams.min_len) / 2
    count = min(train_windows, max(len(data.classes), int(TRAIN_TOKEN_BUDGET // mean_length)))
    x_train, y_train = stacked(data.train_windows(), count)
    tests = {length: stacked(data.fixed_windows("test", length), len(data.fixed_windows("test", length)))
             for length in data.test_lengths}
    accuracy: dict[int, dict[str, float]] = {length: {} for length in tests}
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter caps the time; the fit is near enough
    for k in ks:
        model = make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=0.1, max_iter=300))
        model.fit(kmer_frequencies(x_train, k), y_train)
        for length, (x_test, y_test) in tests.items():
            accuracy[length][f"k{k}"] = float((model.predict(kmer_frequencies(x_test, k)) == y_test).mean())
    for length, (x_test, y_test) in tests.items():
        if exact_k:
            accuracy[length][f"exact{exact_k}"], accuracy[length][f"exact{exact_k}_called"] = \
                exact_match_accuracy(data, x_test, y_test, exact_k)
    seq_len = data.hparams.seq_len
    return {"accuracy": accuracy[seq_len], "by_length": {str(length): row for length, row in accuracy.items()},
            "train_windows": len(y_train), "test_windows": len(tests[seq_len][1]),
            "chance": 1 / len(data.classes), "seq_len": seq_len, "min_len": data.hparams.min_len}


def main(argv: list[str] | None = None) -> dict:
    """Command line: print (and optionally write) the baseline's accuracies as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--min-len", type=int, default=100, help="shortest training window, as data.min_len")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="read lengths to test at (default: finetune's data.test_lengths for --seq-len)")
    parser.add_argument("--k", type=int, nargs="+", default=[4, 5, 6, 7, 8])
    parser.add_argument("--train-windows", type=int, default=4096)
    parser.add_argument("--test-windows", type=int, default=256, help="per species, as data.test_windows")
    parser.add_argument("--exact-k", type=int, default=31, help="k of the exact-matching baseline (0: skip it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    started = time.time()
    if args.out is not None and not args.out.parent.is_dir():
        raise InputError(args.out, "its folder does not exist; create it or choose another --out")
    data = SpeciesDataModule(args.manifest, seq_len=args.seq_len, test_windows=args.test_windows, seed=args.seed,
                             min_len=args.min_len, test_lengths=args.lengths)
    result = {**kmer_baseline(data, args.k, args.train_windows, args.exact_k), "seconds": round(time.time() - started, 1)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        tmp = args.out.with_name(f".{args.out.name}.tmp")
        tmp.write_text(text + "\n")
        tmp.replace(args.out)
    return result


def run(argv: list[str] | None = None) -> int:
    """main() with bad input as one line on stderr and exit status 2, as `seqmamba`'s commands do."""
    try:
        main(argv)
    except InputError as error:
        print(f"kmer_species.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
