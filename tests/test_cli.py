"""One CLI grammar: every word's --help, old flag spellings with their notice, one reading of --device."""

import inspect
import runpy
import typing
from pathlib import Path

import pytest
import torch

from seqmamba.cli import COMMANDS, TRAINING, main, modern_flags

ROOT = Path(__file__).resolve().parents[1]
WORDS = [(f"{word} {sub}".strip(), function) for word, target in COMMANDS.items()
         for sub, function in (target.items() if isinstance(target, dict) else [("", target)])]
APES_MAF = """\
##maf version=1
a score=1
s Hsap.22 100 8 + 1000 ACGTacgt
s Ptro.22 50 8 + 900 ACGTacat
s Ggor.22 70 8 + 800 ACGTACGT
s Ppyg.22 20 8 + 700 ACGAACGT
"""


@pytest.mark.parametrize("name, function", WORDS, ids=[name for name, _ in WORDS])
def test_every_word_help_says_what_it_does_and_lists_its_flags(name, function, capsys):
    assert main([*name.split(), "--help"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith(f"usage: seqmamba {name} ") and lines[2] == inspect.getdoc(function).splitlines()[0]
    if function in TRAINING:
        flags = ["--config", "--out", "--resume", "--overwrite", "--seed", "--model.lr", "--data.batch_size"]
        assert "--trainer.max_epochs" not in text and "--help-all" in text  # Lightning's settings behind --help-all
        assert len(lines) < 80
    else:
        parameters, hints = inspect.signature(function).parameters.values(), typing.get_type_hints(function)
        flags = ["--config", *(f"--{p.name}" if p.kind is p.KEYWORD_ONLY or (p.default is not p.empty and
                                                                            typing.get_origin(hints[p.name]) is not list)
                               else p.name.upper() for p in parameters)]  # a list of files is positional, default or not
    for flag in flags:
        assert any(line.split()[:1] == [flag] and len(line.split()) > 1 for line in lines), flag  # listed, explained


def test_help_all_adds_lightning_trainer_settings(capsys):
    assert main(["pretrain", "--help-all"]) == 0
    assert "  --trainer.max_epochs " in capsys.readouterr().out


@pytest.mark.parametrize("word", ["audio", "sc09", "data"])
def test_words_with_subwords_list_them(word, capsys):
    assert main([word, "--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {sub} " in out for sub in COMMANDS[word])


def test_top_level_help_lists_every_word_and_subword(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name, _ in WORDS)


def test_old_flag_spellings_still_work_with_a_one_line_notice(tmp_path, capsys):
    maf = tmp_path / "apes.maf"
    maf.write_text(APES_MAF)
    assert main(["data", "apes", "--maf", str(maf), "-o", str(tmp_path / "apes")]) == 0
    assert (tmp_path / "apes" / "human.fa").is_file() and (tmp_path / "apes" / "species.tsv").is_file()
    notices = [line for line in capsys.readouterr().err.splitlines() if "old spelling" in line]
    assert notices == ["seqmamba data apes: -o is now --out; the old spelling works until the next release"]


def test_old_spellings_are_rewritten_in_one_table(tmp_path, capsys):
    argv = ["--run_dir", "r", "--batch-size=4", "--no-cuda-graphs", "--seed_everything", "3", "--data", str(tmp_path)]
    assert modern_flags("x", argv, training=True) == ["--out", "r", "--batch_size=4", "--cuda_graphs=false", "--seed",
                                                      "3", "--data.root", str(tmp_path)]
    assert modern_flags("x", ["--data", "data.yaml"], training=True) == ["--data", "data.yaml"]  # a data config
    assert modern_flags("sc09 score", ["--data", str(tmp_path)], training=False) == ["--data", str(tmp_path)]
    assert len(capsys.readouterr().err.splitlines()) == 5  # one notice per old spelling


def test_old_config_keys_of_earlier_runs_are_read_under_their_new_names(tmp_path, capsys):
    run = tmp_path / "earlier"
    (run / "checkpoints").mkdir(parents=True)  # holds a run: refused without --resume, naming the folder
    config = tmp_path / "config.yaml"
    config.write_text(f"run_dir: {run}\nseed_everything: 3\ndata:\n  fasta: {tmp_path / 'g.fa'}\n")
    assert main(["pretrain", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "the config key run_dir is now out" in err and "the config key seed_everything is now seed" in err
    assert f"{run}: already holds a run" in err


@pytest.mark.parametrize("device, problem", [
    ("tpu", "'tpu' is not a device; choose auto, cpu, cuda or cuda:N"),
    ("foo", "'foo' is not a device; choose auto, cpu, cuda or cuda:N"),
    ("cuda:99", "cuda:99: "),
])
@pytest.mark.parametrize("word", [["classify", "reads.fa"], ["audio", "generate", "--out", "g"], ["sc09", "score"]])
def test_a_bad_device_is_one_line_naming_it(word, device, problem, tmp_path, capsys):
    assert main([*word, "--ckpt", str(tmp_path / "missing.ckpt"), "--device", device]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and f": error: --device: {problem}" in err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    assert main(["classify", "--ckpt", str(tmp_path / "m.ckpt"), "--device", "cuda", "reads.fa"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "torch sees no CUDA GPU on this machine; use --device cpu or auto" in err[0]


def test_a_bad_value_is_one_line_naming_the_flag(capsys):
    assert main(["classify", "--ckpt", "m.ckpt", "--min_confidence", "high", "reads.fa"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "min_confidence" in err[0]


def test_readme_command_reference_is_the_parsers_own():
    generator = runpy.run_path(str(ROOT / "pipelines" / "docs" / "cli_reference.py"))
    readme = (ROOT / "README.md").read_text()
    assert generator["with_reference"](readme) == readme, "run: python pipelines/docs/cli_reference.py"


@pytest.mark.parametrize("argv, problem", [(["nonsense"], "seqmamba: error: nonsense: unknown word; the words are"),
                                           (["audio", "sing"], "seqmamba audio: error: sing: choose one of train, "
                                                               "generate")])
def test_an_unknown_word_or_subword_is_one_line(argv, problem, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(problem)
