"""The SC09 protocol's table: one row of scores per set of clips, all against one reference set."""

from __future__ import annotations

import numpy as np

from seqmamba.metrics.generative import (
    am_score,
    fid,
    inception_score,
    inception_score_halves,
    modified_inception_score,
    ndb,
)

COLUMNS = (("n", "clips", "{:d}"), ("fid", "FID", "{:.3f}"), ("is", "IS", "{:.3f}"), ("mis", "mIS", "{:.4g}"),
           ("am", "AM", "{:.3f}"), ("ndb", "NDB", "{:.3f}"))
TABLE_NOTE = ("FID, AM and NDB against the reference; IS is the SaShiMi scorer's variant (KL of one random half's "
              "p(y|x) to the other half's p(y), seed 0; `is_all` in JSON uses every clip for both); mIS over random "
              "pairs. Better: FID, AM, NDB lower; IS, mIS higher.")


def score_row(probs: np.ndarray, features: np.ndarray, reference_probs: np.ndarray, reference_features: np.ndarray,
              ndb_bins: int = 50, mis_pairs: int = 10000) -> dict:
    """Every score of one set of clips; NDB uses at most as many bins as there are reference clips."""
    return {"n": len(probs), "fid": fid(reference_features, features), "is": inception_score_halves(probs),
            "is_all": inception_score(probs), "mis": modified_inception_score(probs, pairs=mis_pairs),
            "am": am_score(reference_probs, probs),
            "ndb": ndb(reference_features, features, bins=min(ndb_bins, len(reference_features)))}


def format_table(rows: dict[str, dict]) -> str:
    """Rows (name -> score_row) as an aligned text table, the paper's columns plus clips and NDB."""
    width = max(len("set"), *(len(name) for name in rows))
    lines = [f"{'set':<{width}}" + "".join(f"{title:>10}" for _, title, _ in COLUMNS)]
    for name, row in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{fmt.format(row[key]):>10}" for key, _, fmt in COLUMNS))
    return "\n".join(lines)
