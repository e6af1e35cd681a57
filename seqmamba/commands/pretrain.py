"""`seqmamba pretrain`: next-token training of a Mamba LM on a FASTA genome, in a run directory.

The run machinery (`seqmamba/training/runner.py`) gives it config.yaml, checkpoints/, logs, resume and signal
handling; this module adds the DNA checks and the report: the test split's perplexity (best checkpoint) beside
the unigram baseline.
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
    """Test-split perplexity of the best checkpoint (lowest validation loss), beside the unigram baseline."""
    from seqmamba.training.summaries import perplexity_line

    best = run.run_dir / "checkpoints" / "best.ckpt"
    ckpt_path = str(best) if best.is_file() else None  # no validation ran: the final weights
    (val,) = run.trainer.validate(run.model, datamodule=run.datamodule, ckpt_path=ckpt_path, verbose=False)
    (test,) = run.trainer.test(run.model, datamodule=run.datamodule, ckpt_path=ckpt_path, verbose=False)
    baseline = run.datamodule.unigram_perplexity("test")
    print(f"test split, {best.name if ckpt_path else 'final weights'}: {perplexity_line(test['test/ppl'], baseline)}")
    return {"test_ppl": test["test/ppl"], "test_bits_per_base": test["test/bits_per_token"],
            "val_ppl": val["val/ppl"], "val_bits_per_base": val["val/bits_per_token"],
            "unigram_ppl": baseline, "baseline_loss": math.log(baseline),
            "evaluated": best.name if ckpt_path else "final weights", "parameters": run.model.model.num_parameters()}


def main(argv: list[str]) -> dict:
    """Train a DNA language model on a FASTA genome; held-out perplexity beside the unigram baseline."""
    from seqmamba.tasks.dna_data import DNADataModule
    from seqmamba.tasks.language_model import LanguageModelTask
    from seqmamba.training.runner import run_training

    return run_training("pretrain", LanguageModelTask, DNADataModule, argv, finish=report,
                        default_run_dir="runs/pretrain", check=check_vocabulary)
