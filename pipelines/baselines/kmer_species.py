"""Baseline for species classification: k-mer counts (k = 4..8) with logistic regression, on the model's windows.

The training windows are the first `--train-windows` balanced windows the fine-tuning run would see
(same seed), the test windows the fixed held-out ones: the same windows and splits as `seqmamba
finetune`. k-mers are canonical (a k-mer and its reverse complement count as one), since windows
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

from seqmamba.data.tokenizer import A, T
from seqmamba.tasks.species_data import SpeciesDataModule

TRAIN_TOKEN_BUDGET = 1 << 25  # bases of training windows at most: keeps k-mer tables in memory at long L


def kmer_frequencies(windows: np.ndarray, k: int) -> scipy.sparse.csr_matrix:
    """(N, L) token ids -> (N, 4^k) canonical k-mer frequencies, sparse."""
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
    canonical = np.minimum(forward, backward)
    rows = np.broadcast_to(np.arange(n)[:, None], canonical.shape)[ok]
    counts = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, canonical[ok])), shape=(n, 4**k)).tocsr()
    totals = np.asarray(counts.sum(axis=1)).clip(min=1)
    return scipy.sparse.csr_matrix(counts.multiply(1 / totals))


def stacked(dataset, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` (window, label) items of a dataset as arrays."""
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    return np.stack([w.numpy() for w, _ in items]), np.array([label for _, label in items])


def kmer_baseline(data: SpeciesDataModule, ks: list[int], train_windows: int = 4096) -> dict:
    """Held-out accuracy of k-mer logistic regression per k, on the data module's windows and splits."""
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
    return {"accuracy": accuracy, "train_windows": len(y_train), "test_windows": len(y_test),
            "chance": 1 / len(data.classes), "seq_len": data.hparams.seq_len}


def main(argv: list[str] | None = None) -> dict:
    """Command line: print (and optionally write) the baseline's accuracies as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--k", type=int, nargs="+", default=[4, 5, 6, 7, 8])
    parser.add_argument("--train-windows", type=int, default=4096)
    parser.add_argument("--test-windows", type=int, default=256, help="per species, as data.test_windows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    started = time.time()
    data = SpeciesDataModule(args.manifest, seq_len=args.seq_len, test_windows=args.test_windows, seed=args.seed)
    result = {**kmer_baseline(data, args.k, args.train_windows), "seconds": round(time.time() - started, 1)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    sys.exit(main() and 0)
