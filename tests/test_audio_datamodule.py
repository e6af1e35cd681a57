"""AudioDataModule: batches for next-sample prediction from both layouts, short clips padded, bad config refused."""

from types import SimpleNamespace

import lightning
import numpy as np
import pytest
import torch

from seqmamba.data.audio_datasets import IGNORE_INDEX, SC09_LABELS
from seqmamba.data.audio_io import write_wav
from seqmamba.errors import InputError
from seqmamba.tasks.audio_data import AudioDataModule
from seqmamba.training.loaders import forget_resume_point, resume_mid_epoch


@pytest.fixture()
def sc09_root(tmp_path):
    """Ten digits x three speakers of 0.5 s tones (a: train, b: valid, c: test), one 0.25 s clip, one corrupt file."""
    rng = np.random.default_rng(0)
    for d, label in enumerate(SC09_LABELS):
        for speaker in "abc":
            write_wav(tmp_path / label / f"{speaker}_nohash_0.wav", 0.5 * np.sin(np.arange(8000) * (d + 1) / 50)
                      + 0.01 * rng.normal(size=8000))
    write_wav(tmp_path / "zero" / "short_nohash_0.wav", 0.3 * np.sin(np.arange(4000) / 9))
    (tmp_path / "one" / "broken_nohash_0.wav").write_bytes(b"broken")
    (tmp_path / "validation_list.txt").write_text("".join(f"{d}/b_nohash_0.wav\n" for d in SC09_LABELS))
    (tmp_path / "testing_list.txt").write_text("".join(f"{d}/c_nohash_0.wav\n" for d in SC09_LABELS))
    return tmp_path


def test_sc09_batches_are_shifted_codes_with_padding_ignored(sc09_root, capsys):
    data = AudioDataModule(str(sc09_root), seq_len=8000, batch_size=4)
    data.setup("fit")
    assert "broken_nohash_0.wav" in capsys.readouterr().err and len(data.skipped["train"]) == 1
    assert data.num_classes == 256 and len(data.dataset("train")) == 11
    batch = next(iter(data.val_dataloader()))
    ids, labels = batch["input_ids"], batch["labels"]
    assert ids.shape == labels.shape == (4, 8000) and ids.dtype == labels.dtype == torch.int64
    assert torch.all(ids[:, 0] == 128) and torch.equal(ids[:, 1:], labels[:, :-1])
    assert labels.min() >= 0 and labels.max() == 255  # each clip is min-max scaled: it reaches the top code
    short = data.dataset("train")[[s.path.name for s in data.segments("train")].index("short_nohash_0.wav")]
    assert torch.all(short["labels"][4000:] == IGNORE_INDEX) and torch.all(short["labels"][:4000] >= 0)


def test_training_order_is_drawn_from_seed_and_epoch_and_resumes_mid_epoch(sc09_root):
    def epoch_labels(seed, epoch=0, skip=0):
        data = AudioDataModule(str(sc09_root), seq_len=800, batch_size=2, seed=seed, samples_per_epoch=30)
        data.setup("fit")
        data.trainer = SimpleNamespace(current_epoch=epoch)
        loader = data.train_dataloader()
        resume_mid_epoch(0, skip)  # what the run machinery does when it restores a checkpoint saved in epoch 0
        try:
            return [b["labels"] for b in loader]
        finally:
            forget_resume_point()
    first = epoch_labels(0)
    assert len(first) == 15
    assert torch.equal(torch.cat(first), torch.cat(epoch_labels(0)))
    assert not torch.equal(torch.cat(first), torch.cat(epoch_labels(1)))
    assert not torch.equal(torch.cat(first), torch.cat(epoch_labels(0, epoch=1)))
    assert torch.equal(torch.cat(first[4:]), torch.cat(epoch_labels(0, skip=4)))
    second = torch.cat(epoch_labels(0, epoch=1))
    assert torch.equal(second, torch.cat(epoch_labels(0, epoch=1, skip=4)))  # a skip of epoch 0 leaves epoch 1 whole


def test_every_iterator_of_the_resumed_epoch_skips_with_workers(sc09_root):
    """Lightning makes an iterator while configuring optimizers and may drop it; workers prefetch at once."""
    data = AudioDataModule(str(sc09_root), seq_len=800, batch_size=2, samples_per_epoch=30, num_workers=2)
    data.setup("fit")
    data.trainer = SimpleNamespace(current_epoch=1)
    whole = torch.cat([b["labels"] for b in data.train_dataloader()])
    resume_mid_epoch(1, 4)
    try:
        loader = data.train_dataloader()
        iter(loader)
        for _ in range(2):
            assert torch.equal(torch.cat([b["labels"] for b in loader]), whole[8:])
    finally:
        forget_resume_point()


def test_youtubemix_recordings_are_cut_into_tiles(tmp_path):
    for i in range(1, 11):
        write_wav(tmp_path / f"minute{i}.wav", 0.4 * np.sin(np.arange(3000) * i / 40))
    data = AudioDataModule(str(tmp_path), layout="youtubemix", seq_len=1000, batch_size=3, val_max_clips=2,
                           quantization="linear", bits=4)
    data.setup()
    assert len(data.segments("train")) == 8 * 3 and len(data.segments("valid")) == 2
    assert data.num_classes == 16
    batch = next(iter(data.test_dataloader()))
    assert batch["labels"].max() == 15 and torch.all(batch["input_ids"][:, 0] == 8)


@pytest.mark.parametrize("setting, message", [({"layout": "wav"}, "layout"), ({"quantization": "alaw"}, "quantization"),
                                              ({"bits": 1}, "bits"), ({"seq_len": 0}, "seq_len")])
def test_bad_settings_are_refused_up_front(tmp_path, setting, message):
    with pytest.raises(ValueError, match=message):
        AudioDataModule(str(tmp_path), **setting)


def test_a_split_without_usable_audio_is_an_input_error(tmp_path):
    for i in range(3):
        (tmp_path / f"x{i}.wav").write_bytes(b"")
    with pytest.raises(InputError, match="no usable audio"):
        AudioDataModule(str(tmp_path), layout="youtubemix").setup("fit")


class NextSampleModel(lightning.LightningModule):
    """Smallest model that consumes the batches: embedding -> linear, cross-entropy ignoring padding."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Embedding(256, 8), torch.nn.Linear(8, 256))

    def training_step(self, batch, _):
        logits = self.net(batch["input_ids"])  # (B, L, 256)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())

    def validation_step(self, batch, _):
        self.log("val/loss", self.training_step(batch, _))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trains_under_a_lightning_trainer(sc09_root):
    data = AudioDataModule(str(sc09_root), seq_len=2000, batch_size=4, val_max_clips=4)
    trainer = lightning.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1)
    trainer.fit(NextSampleModel(), datamodule=data)
    assert trainer.global_step == 3 and torch.isfinite(trainer.callback_metrics["val/loss"])
