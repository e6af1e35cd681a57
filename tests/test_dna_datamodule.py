import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import lightning
import numpy as np
import pytest
import torch

from seqmamba.data.tokenizer import VOCAB_SIZE
from seqmamba.errors import InputError
from seqmamba.tasks.dna_data import DNADataModule

LAMBDA = Path(__file__).parents[1] / "data" / "genomes" / "lambda_phage.fa"


@pytest.fixture
def uniform_genome(tmp_path):
    """Two contigs of uniformly random bases: a unigram model's perplexity is 4."""
    rng = np.random.default_rng(0)
    path = tmp_path / "uniform.fa"
    with open(path, "w") as out:
        for name, length in (("chrA", 60_000), ("chrB", 20_000)):
            out.write(f">{name}\n{''.join(rng.choice(list('ACGT'), length))}\n")
    return path


def test_batches_are_shifted_windows(uniform_genome):
    data = DNADataModule(str(uniform_genome), seq_len=64, batch_size=4, samples_per_epoch=16, val_max_windows=10)
    data.setup("fit")
    batches = list(data.train_dataloader())
    assert len(batches) == 4
    for batch in batches + list(data.val_dataloader()):
        assert batch["input_ids"].dtype == batch["labels"].dtype == torch.int64
        assert batch["input_ids"].shape == batch["labels"].shape and batch["input_ids"].shape[1] == 64
        assert torch.equal(batch["input_ids"][:, 1:], batch["labels"][:, :-1])
    assert sum(len(b["labels"]) for b in data.val_dataloader()) == 10


def test_warmup_stages_keep_tokens_per_step_constant(uniform_genome):
    data = DNADataModule(str(uniform_genome), seq_len=512, batch_size=2, samples_per_epoch=8,
                         warmup_seq_lens=[128, 256], warmup_epochs_per_stage=2)
    stages = [data.stage_for_epoch(epoch) for epoch in range(7)]
    assert stages == [(128, 8)] * 2 + [(256, 4)] * 2 + [(512, 2)] * 3
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))  # no trainer attached: epoch 0
    assert batch["input_ids"].shape == (8, 128)


def test_warmup_runs_under_a_trainer(uniform_genome):
    class Recorder(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB_SIZE, VOCAB_SIZE)
            self.shapes = []

        def training_step(self, batch, index):
            self.shapes.append((self.current_epoch, tuple(batch["input_ids"].shape)))
            logits = self.embed(batch["input_ids"])
            return torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DNADataModule(str(uniform_genome), seq_len=64, batch_size=2, samples_per_epoch=4, warmup_seq_lens=[32])
    model = Recorder()
    trainer = lightning.Trainer(max_epochs=2, reload_dataloaders_every_n_epochs=1, limit_val_batches=0, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=data)
    assert sorted(set(model.shapes)) == [(0, (4, 32)), (1, (2, 64))]


def test_unigram_perplexity_of_uniform_genome_is_four(uniform_genome):
    data = DNADataModule(str(uniform_genome), seq_len=256, valid_fraction=0.1, val_max_windows=None)
    data.setup()
    perplexity = data.unigram_perplexity("valid")
    assert 3.95 < perplexity < 4.05
    assert data.unigram_perplexity("test") < 4.1


def test_unigram_perplexity_matches_a_per_token_mean_over_the_loader(tmp_path):
    fasta = tmp_path / "lambda.fa"  # a copy, so the .fai index is not written into the repository
    shutil.copy(LAMBDA, fasta)
    data = DNADataModule(str(fasta), seq_len=128, batch_size=3)
    data.setup()
    counts = np.zeros(VOCAB_SIZE)
    for window in data.evaluation_windows("train"):
        counts += np.bincount(window[1:].numpy(), minlength=VOCAB_SIZE)
    log_p = torch.tensor(np.log((counts + 1) / (counts.sum() + VOCAB_SIZE)))
    nll = torch.cat([-log_p[batch["labels"]].flatten() for batch in data.val_dataloader()])
    assert math.isclose(data.unigram_perplexity(), math.exp(nll.mean().item()), rel_tol=1e-9)
    assert 3.5 < data.unigram_perplexity() < 4.0  # lambda's bases are nearly, not exactly, uniform


def test_bed_split(uniform_genome, tmp_path):
    bed = tmp_path / "human-sequences.bed"
    bed.write_text("chrA\t0\t50000\ttrain\nchrA\t50000\t60000\tvalid\nchrB\t0\t20000\ttest\n")
    data = DNADataModule(str(uniform_genome), bed=str(bed), split="bed", seq_len=128, val_max_windows=None)
    data.setup()
    assert all(w.contig == "chrA" and w.start >= 50000 for w in data.evaluation_windows("valid").windows)
    assert len(data.test_dataloader().dataset) == (20000 - 129) // 128 + 1


def test_contig_split_and_window_too_long_for_a_split(uniform_genome):
    data = DNADataModule(str(uniform_genome), split="contig", valid_contigs=["chrB"], seq_len=30_000)
    with pytest.raises(InputError, match="valid split: no interval is long enough for a window of 30001") as error:
        data.setup("fit")
    assert str(uniform_genome) in str(error.value)


def test_empty_split_and_bad_config_are_input_errors(uniform_genome):
    data = DNADataModule(str(uniform_genome), split="contig", valid_contigs=["chrB"])
    with pytest.raises(InputError, match="test split is empty"):
        data.setup("test")
    with pytest.raises(ValueError, match="warmup_seq_lens must ascend"):
        DNADataModule(str(uniform_genome), seq_len=256, warmup_seq_lens=[128, 64])
    with pytest.raises(ValueError, match="split must be one of"):
        DNADataModule(str(uniform_genome), split="random")


def test_trainer_that_would_reuse_one_epoch_of_windows_is_refused(uniform_genome):
    data = DNADataModule(str(uniform_genome), seq_len=64)
    data.setup("fit")
    data.trainer = SimpleNamespace(reload_dataloaders_every_n_epochs=0, current_epoch=3)
    with pytest.raises(InputError, match="reload_dataloaders_every_n_epochs: 1"):
        data.train_dataloader()
