"""The run machinery: the runner every training command uses, resumable loaders, checkpoints, run summaries."""
