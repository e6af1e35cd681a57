"""A setting a component refuses (its ValueError names the field) reaches the user as one line naming the key."""

from __future__ import annotations

import pytest
from test_pretrain_cli import LAMBDA, pretrain

from seqmamba.cli import main
from seqmamba.training.runner import setting_error


def error_line(capsys, command: str) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"seqmamba {command}: ")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("extra, problem", [
    (["--model.backbone.d_model", "-4"], "model.backbone.d_model must be at least 1, got -4"),
    (["--data.rc_prob", "2"], "data.rc_prob must lie in [0, 1], got 2"),
    (["--data.valid_fraction", "0.6", "--data.test_fraction", "0.6"], "data.valid_fraction and test_fraction must"),
    (["--model.lr", "0", "--model.betas", "[0.9, 1.5]"], "model.lr must be positive, got 0.0; model.betas must be"),
])
def test_pretrain_setting_refused_by_a_component_names_its_key(tmp_path, capsys, extra, problem):
    genome = tmp_path / "lambda.fa"
    genome.write_bytes(LAMBDA.read_bytes())
    assert pretrain(tmp_path / "run", genome, "--trainer.max_epochs", "1", *extra) == 2
    assert problem in error_line(capsys, "pretrain")
    assert not (tmp_path / "run").exists()


def test_audio_block_kind_outside_its_choices_names_the_key(tmp_path, capsys):
    assert main(["audio", "train", "--data.root", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--model.unet.center", "transformer"]) == 2
    line = error_line(capsys, "audio train")
    assert "model.unet.center" in line and "transformer" in line


def test_a_wrapped_component_error_names_the_key_of_its_field():
    wrapped = ValueError("Does not validate against any of the Union subtypes\nErrors:\n"
                         "  - pool must give one pooling factor >= 1 per stage, got [0]\n  - Expected a NoneType")
    error = setting_error(wrapped, ["trainer.max_epochs", "model.unet.pool", "model.lr"])
    assert str(error) == "config: model.unet.pool must give one pooling factor >= 1 per stage, got [0]"
    assert str(setting_error(ValueError("odd"), ["model.lr"])) == "config: odd"
