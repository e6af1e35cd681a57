"""Classifier: both poolings exact under right padding, pretrained backbone loading and its mismatch error, training."""

from __future__ import annotations

from dataclasses import asdict

import lightning
import pytest
import torch
from species_fixtures import make_species

from seqmamba.errors import InputError
from seqmamba.nn import MambaLMConfig, MambaLMHeadModel
from seqmamba.nn.classifier import SequenceClassifier
from seqmamba.tasks.classification import ClassifierTask, accuracies
from seqmamba.tasks.species_data import SpeciesDataModule
from seqmamba.training.model_loading import pretrained_backbone

TINY = MambaLMConfig(d_model=16, n_layer=2)


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_right_padded_batch_classifies_each_read_as_alone(pooling):
    torch.manual_seed(0)
    model = SequenceClassifier(TINY, num_classes=3, pooling=pooling).eval()
    short, long = torch.randint(4, 8, (1, 7)), torch.randint(4, 8, (1, 12))
    padded = torch.zeros(2, 12, dtype=torch.long)
    padded[0, :7], padded[1] = short[0], long[0]
    with torch.no_grad():
        batched = model(padded, torch.tensor([7, 12]))
        assert torch.allclose(batched[0], model(short)[0], atol=1e-5)
        assert torch.allclose(batched[1], model(long)[0], atol=1e-5)
        assert not torch.allclose(model(padded)[0], model(short)[0], atol=1e-3)  # padding would count without lengths


def test_mean_and_last_pooling_differ():
    torch.manual_seed(0)
    ids = torch.randint(4, 8, (2, 16))
    mean = SequenceClassifier(TINY, 3, "mean")
    last = SequenceClassifier(TINY, 3, "last")
    last.load_state_dict(mean.state_dict())
    with torch.no_grad():
        hidden = mean.backbone(ids)
        assert torch.allclose(mean(ids), mean.head(hidden.mean(dim=1)))
        assert torch.allclose(last(ids), last.head(hidden[:, -1]))
    with pytest.raises(ValueError, match="pooling"):
        SequenceClassifier(TINY, 3, "max")


def save_pretrained(path, config):
    """A checkpoint as `seqmamba pretrain` writes it: LanguageModelTask's state dict and hyperparameters."""
    lm = MambaLMHeadModel(config)
    torch.save({"state_dict": {f"model.{k}": v for k, v in lm.state_dict().items()},
                "hyper_parameters": {"backbone": asdict(config), "lr": 0.008}}, path)  # as LightningCLI records it
    return lm


def test_pretrained_backbone_loads_and_head_stays_new(tmp_path):
    lm = save_pretrained(tmp_path / "lm.ckpt", TINY)
    task = ClassifierTask(TINY, init_from=str(tmp_path / "lm.ckpt"), classes=["a", "b"])
    for name, value in lm.backbone.state_dict().items():
        assert torch.equal(task.classifier.backbone.state_dict()[name], value), name
    assert task.classifier.head.out_features == 2


@pytest.mark.parametrize("field, value", [("d_model", 32), ("n_layer", 3), ("vocab_size", 12)])
def test_pretrained_backbone_of_another_shape_is_refused(tmp_path, field, value):
    other = MambaLMConfig(**{**TINY.__dict__, field: value})
    save_pretrained(tmp_path / "lm.ckpt", other)
    with pytest.raises(InputError) as error:
        pretrained_backbone(tmp_path / "lm.ckpt", TINY)
    assert error.value.path == str(tmp_path / "lm.ckpt") and f"{field} {value} there" in error.value.problem


def test_accuracies_from_confusion():
    overall, per_class = accuracies(torch.tensor([[3, 1], [0, 4]]))
    assert overall == 7 / 8 and per_class == [0.75, 1.0]


def test_task_learns_easy_species_and_records_classes(tmp_path):
    torch.manual_seed(0)
    manifest = make_species(tmp_path, n_species=3, n_records=20, record_len=300, substitution_rate=0.4)
    data = SpeciesDataModule(str(manifest), seq_len=64, batch_size=12, samples_per_epoch=360, test_windows=10)
    task = ClassifierTask(MambaLMConfig(d_model=16, n_layer=1), lr=1e-2, warmup_steps=5)
    trainer = lightning.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(task, datamodule=data)
    trainer.test(task, datamodule=data, verbose=False)
    assert task.hparams.classes == ["sp0", "sp1", "sp2"]
    assert task.test_confusion.sum() == 30
    assert accuracies(task.test_confusion)[0] > 0.6  # chance is 1/3
