"""`seqmamba pretrain`: next-token training of a Mamba LM on a FASTA genome, in a run directory.

The run machinery (`seqmamba/training/runner.py`) gives it config.yaml, checkpoints/, logs, resume and signal
handling; this module adds the DNA checks and the report: held-out perplexity beside the unigram baseline.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from seqmamba.data.tokenizer import VOCAB_SIZE
from seqmamba.errors import InputError

if TYPE_CHECKING:  # Lightning loads when the word runs, not when `seqmamba --help` lists it
    from seqmamba.tasks.dna_data import DNADataModule
    from seqmamba.tasks.language_model import LanguageModelTask
    from seqmamba.training.runner import FinishedRun


def check_vocabulary(model: LanguageModelTask, data: DNADataModule) -> None:
    """The embedding must have a row for every token the DNA tokenizer emits."""
    vocab_size = model.model.config.vocab_size
    if vocab_size < VOCAB_SIZE:
        raise InputError("model.backbone.vocab_size", f"is {vocab_size}, but DNA tokens need {VOCAB_SIZE} "
                                                      f"(PAD BOS EOS UNK A C G T N); set it to {VOCAB_SIZE}")


def report(run: FinishedRun) -> dict:
    """Held-out perplexity and bits per base, beside the unigram baseline of the same genome."""
    from seqmamba.training.summaries import perplexity_line

    (metrics,) = run.trainer.validate(run.model, datamodule=run.datamodule, verbose=False)
    baseline = run.datamodule.unigram_perplexity("valid")
    print(perplexity_line(metrics["val/ppl"], baseline))
    return {"val_ppl": metrics["val/ppl"], "val_bits_per_base": metrics["val/bits_per_token"],
            "unigram_ppl": baseline, "baseline_loss": math.log(baseline),
            "parameters": run.model.model.num_parameters()}


def main(argv: list[str]) -> dict:
    """Train a DNA language model on a FASTA genome; held-out perplexity beside the unigram baseline."""
    from seqmamba.tasks.dna_data import DNADataModule
    from seqmamba.tasks.language_model import LanguageModelTask
    from seqmamba.training.runner import run_training

    return run_training("pretrain", LanguageModelTask, DNADataModule, argv, finish=report,
                        default_run_dir="runs/pretrain", check=check_vocabulary)
