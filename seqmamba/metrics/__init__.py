"""Scores of models: generative-audio metrics (FID, IS, mIS, AM, NDB) and the SC09 mel features."""

from seqmamba.metrics.generative import (
    am_score,
    fid,
    frechet_distance,
    gaussian_fit,
    inception_score,
    inception_score_halves,
    likelihood_filter,
    modified_inception_score,
    ndb,
)

__all__ = ["am_score", "fid", "frechet_distance", "gaussian_fit", "inception_score", "inception_score_halves",
           "likelihood_filter", "modified_inception_score", "ndb"]
