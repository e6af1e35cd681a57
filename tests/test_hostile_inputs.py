"""A probe of hostile inputs across every command: each ends in one line naming the file or setting, no traceback,
the right exit status, and not one byte changed in the folder (issue 19: hangs, tracebacks, silent or wrong
results, NaN outputs). Most cases stop while the arguments and inputs are checked, before any model is built."""

from __future__ import annotations

import builtins
import errno
import gzip
import hashlib
import io
import os
import re
import shutil
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from Bio import bgzf
from species_fixtures import make_species
from test_pretrain_cli import LAMBDA, TINY

from seqmamba.cli import main
from seqmamba.data.audio_io import load_audio
from seqmamba.data.genome import open_genome
from seqmamba.errors import InputError
from seqmamba.nn import MambaLMConfig
from seqmamba.nn.classifier import SequenceClassifier
from seqmamba.nn.sashimi import Sashimi, SashimiConfig

LINE = re.compile(r"^seqmamba [a-z0-9 -]+: (error|stopped): ")
BOMB = "".join(f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))
BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + BOMB
CLASSIFIER = {"d_model": 8, "n_layer": 1, "d_state": 4}
UNET = {"d_model": 8, "n_layers": 1, "pool": [2], "outer": "mamba", "center": "mamba", "d_state": 4}
AUDIO_TINY = ["--model.unet.d_model", "8", "--model.unet.n_layers", "1", "--model.unet.pool", "[2]",
              "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"]
GENERATE = ["--n", "2", "--seconds", "0.001", "--device", "cpu", "--cuda_graphs=false"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under a folder with its content hash: to prove nothing was changed."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def wav_with_rate(path: Path, rate: int) -> Path:
    """A 16-bit mono WAV whose header claims `rate` samples per second."""
    data = struct.pack("<1000h", *([0, 3000] * 500))
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, 2 * rate, 2, 16)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + fmt + b"data"
                     + struct.pack("<I", len(data)) + data)
    return path


def save_checkpoint(path: Path, model: torch.nn.Module, prefix: str, hp: dict, data_hp: dict) -> Path:
    torch.save({"state_dict": {prefix + k: v for k, v in model.state_dict().items()}, "hyper_parameters": hp,
                "datamodule_hyper_parameters": data_hp}, path)
    return path


def overflowing(head: torch.nn.Linear) -> None:
    """Finite weights whose logits overflow to +-inf: probabilities become NaN whatever a loader checks."""
    with torch.no_grad():
        head.weight.copy_(torch.where(torch.arange(head.weight.numel()).view_as(head.weight) % 2 == 0, 3e38, -3e38))


def checkpoints(root: Path) -> dict[str, Path]:
    """A classifier and a U-Net checkpoint each sane, overflowing (NaN outputs) and with NaN weights."""
    torch.manual_seed(0)
    paths = {}
    for name, build, prefix, hp, data_hp in [
        ("cls", lambda: SequenceClassifier(MambaLMConfig(**CLASSIFIER), 2, "mean"), "classifier.",
         {"backbone": CLASSIFIER, "classes": ["sp0", "sp1"], "pooling": "mean"}, {"seq_len": 64}),
        ("unet", lambda: Sashimi(SashimiConfig(**UNET)), "model.", {"unet": UNET},
         {"quantization": "mu-law", "bits": 8}),
    ]:
        model = build()
        paths[name] = save_checkpoint(root / f"{name}.ckpt", model, prefix, hp, data_hp)
        head = model.head if name == "cls" else model.lm_head
        overflowing(head)
        paths[f"{name}_overflow"] = save_checkpoint(root / f"{name}-overflow.ckpt", model, prefix, hp, data_hp)
        with torch.no_grad():
            head.weight.fill_(float("nan"))
        paths[f"{name}_nan"] = save_checkpoint(root / f"{name}-nan.ckpt", model, prefix, hp, data_hp)
    return paths


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> SimpleNamespace:
    """Every hostile file the cases name, in one folder that no case may change."""
    root = tmp_path_factory.mktemp("hostile")
    f = SimpleNamespace(root=root, out=root / "out", ckpt=root / "none.ckpt")
    f.genome = root / "lambda.fa"
    shutil.copy(LAMBDA, f.genome)
    text = LAMBDA.read_text()
    (root / "crlf.fa").write_bytes(text.replace("\n", "\r\n").encode())
    writer = bgzf.BgzfWriter(str(root / "full.fa.gz"), "wb")
    writer.write(text.encode())
    writer.close()
    packed = (root / "full.fa.gz").read_bytes()
    (root / "truncated.fa.gz").write_bytes(packed[: len(packed) // 2])
    (root / "full.fa.gz").unlink()
    species = root / "species"
    species.mkdir()
    f.manifest = make_species(species, n_species=2, n_records=4, record_len=200)
    for name, rows in {"twice": "a\tspecies0.fa\nb\tspecies0.fa", "twice-dot": "a\tspecies0.fa\nb\t./species0.fa",
                       "unclassified": "unclassified\tspecies0.fa\nb\tspecies1.fa",
                       "empty": "a\tspecies0.fa\nempty\tspecies1.fa",
                       "Unclassified": "Unclassified\tspecies0.fa\nb\tspecies1.fa"}.items():
        (species / f"{name}.tsv").write_text(f"species\tfasta\n{rows}\n")
    (species / "latin1.tsv").write_bytes("species\tfasta\ncaf\xe9\tspecies0.fa\nb\tspecies1.fa\n".encode("latin-1"))
    (species / "linked.fa").symlink_to(species / "species1.fa")
    (species / "twice-link.tsv").write_text("species\tfasta\na\tspecies1.fa\nb\tlinked.fa\n")
    (species / "crlf.tsv").write_text("species\tfasta\na\tspecies0.fa\nb\t../crlf.fa\n")
    (species / "truncated.tsv").write_text("species\tfasta\na\tspecies0.fa\nb\t../truncated.fa.gz\n")
    reads = root / "reads"
    reads.mkdir()
    (reads / "reads.fa").write_text(">r1\nACGTACGTAC\n>r2\nGGGCCCAATT\n")
    (reads / "nul.fa").write_bytes(b">r1\nACGT\n>r2\nAC\x00\x00GT\n")
    (reads / "nul-title.fa").write_bytes(b">r\x001\nACGT\n")
    (reads / "nul.fq").write_bytes(b"@q1\nACGT\n+\nIIII\n@q2\nA\x00GT\n+\nIIII\n")
    (reads / "nul.fa.gz").write_bytes(gzip.compress(b">r1\nAC\x00GT\n"))
    (reads / "linked.fa").symlink_to(reads / "reads.fa")
    (reads / "empty.fa").write_text("")
    configs = root / "configs"
    configs.mkdir()
    (configs / "bomb.yaml").write_text(BOMB)
    (configs / "recursive.yaml").write_text("a: &a [*a]\n")
    (configs / "deep.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    (configs / "names-bomb.yaml").write_text(f"model:\n  backbone: {configs / 'bomb.yaml'}\n")
    (configs / "latin1.yaml").write_bytes("# caf\xe9\ntrainer:\n  max_epochs: 1\n".encode("latin-1"))
    (configs / "manifest-bomb.yaml").write_text(BOMB + "files:\n  - {url: https://example.org/x.fa, filename: x.fa}\n")
    (configs / "manifest-latin1.yaml").write_bytes("name: caf\xe9\nfiles: []\n".encode("latin-1"))
    audio = root / "audio"
    (audio / "zero-hz").mkdir(parents=True)
    for k in range(3):
        wav_with_rate(audio / "zero-hz" / f"piano-{k + 1}.wav", 0)
    clips = audio / "clips"
    clips.mkdir()
    for name in ("a.wav", "b.wav", "c.wav"):
        wav_with_rate(clips / name, 16000)
    for name, rows in {"half": "a.wav\t-1", "duplicate": "a.wav\t-1\nb.wav\t-2\nc.wav\t-3\na.wav\t-4",
                       "duplicate-abs": f"a.wav\t-1\nb.wav\t-2\nc.wav\t-3\n{clips / 'a.wav'}\t-4",
                       "nan": "a.wav\tnan\nb.wav\t-2\nc.wav\t-3", "missing": "a.wav\t-1\nb.wav\t-2\nz.wav\t-3"}.items():
        (audio / f"{name}.tsv").write_text(f"file\tlog_likelihood\n{rows}\n")
    (audio / "latin1.tsv").write_bytes("file\tlog_likelihood\nb\xe9.wav\t-1\n".encode("latin-1"))
    (root / "notes.txt").write_text("mine\n")
    maf = root / "maf"
    (maf / "out").mkdir(parents=True)
    block = "a score=1\ns Hsap.22 0 4 + 10 {}\ns Ptro.22 0 4 + 10 ACGT\n"
    (maf / "nul.maf").write_bytes(("##maf version=1\n" + block.format("AC\0T")).encode())
    (maf / "latin1.maf").write_bytes(("##maf version=1\n" + block.format("AC\xe9T")).encode("latin-1"))
    (maf / "mice.maf").write_text("##maf version=1\na score=1\ns Mmus.1 0 4 + 10 ACGT\n")
    packed = gzip.compress(("##maf version=1\n" + block.format("ACGT") * 50).encode())
    (maf / "truncated.maf.gz").write_bytes(packed[: len(packed) - 12])  # the end of the stream is missing
    for fasta in (f.genome, species / "species0.fa", species / "species1.fa"):
        open_genome(fasta)  # the .fai indexes exist before any case, so a case that reads a genome changes nothing
    f.__dict__.update(checkpoints(root))
    return f


def unreadable(target: str):
    """Make one path raise PermissionError when opened, as chmod 000 does for a user who is not root."""
    def patch(monkeypatch, f):
        path = str(f.root / target)
        if os.geteuid() != 0:
            os.chmod(path, 0)
            monkeypatch.setattr(f, "restore", lambda: os.chmod(path, 0o644), raising=False)
            return
        real_open = builtins.open

        def guarded(file, *args, **kwargs):
            if str(file) == path:
                raise PermissionError(errno.EACCES, "Permission denied", path)
            return real_open(file, *args, **kwargs)
        monkeypatch.setattr(builtins, "open", guarded)
        monkeypatch.setattr(io, "open", guarded)
    return patch


def failing(target: str, code: int, message: str, path_arg: int = -1):
    """Make `module.attribute` raise OSError(code) for paths in the probe's folder: a read-only or full folder when
    outputs are written (elsewhere, e.g. numba's cache of compiled kernels, it works as before)."""
    def patch(monkeypatch, f):
        module, _, name = target.rpartition(".")
        real = getattr(__import__(module, fromlist=[name]), name)

        def fail(*args, **kwargs):
            if not str(args[path_arg]).startswith(str(f.root)):
                return real(*args, **kwargs)
            raise OSError(code, message, str(args[path_arg]))
        monkeypatch.setattr(target, fail)
    return patch


def interrupted(target: str):
    """Ctrl+C in the middle of the work."""
    def patch(monkeypatch, f):
        def stop(*args, **kwargs):
            raise KeyboardInterrupt
        monkeypatch.setattr(target, stop)
    return patch


def pretrain(f, *extra):
    return ["pretrain", "--data.fasta", str(f.genome), "--out", str(f.out), *TINY, *extra]


def finetune(f, *extra, manifest=None):
    return ["finetune", "--data.manifest", str(manifest or f.manifest), "--out", str(f.out),
            *TINY[:-8], "--trainer.accelerator", "cpu", *extra]


def audio_train(f, *extra):
    return ["audio", "train", "--data.root", str(f.root / "audio" / "clips"), "--data.layout", "youtubemix",
            "--out", str(f.out), *AUDIO_TINY, *extra]


def sc09_train(f, *extra):
    return ["sc09", "train-classifier", "--data.root", str(f.root / "audio" / "clips"), "--out", str(f.out),
            "--trainer.accelerator", "cpu", *extra]


def classify(f, *files, ckpt=None, extra=()):
    return ["classify", "--ckpt", str(ckpt or f.cls), "--out", str(f.root / "predictions.tsv"), *extra,
            *(str(f.root / "reads" / name) for name in files)]


def generate(f, *extra, ckpt=None):
    return ["audio", "generate", "--ckpt", str(ckpt or f.unet), "--out", str(f.out), *GENERATE, *extra]


def score(f, *extra):
    return ["sc09", "score", "--ckpt", str(f.ckpt), "--samples", str(f.root / "audio" / "clips"), *extra]


def fetch(f, manifest, *extra):
    return ["data", "fetch", str(manifest), "--out", str(f.out), *extra]


def run_case(capsys, monkeypatch, f, argv, status: int, named: str, patch=None) -> str:
    """Run one case: the status, one `seqmamba WORD: error|stopped:` line naming `named`, no traceback, no change."""
    before = snapshot(f.root)
    if patch is not None:
        patch(monkeypatch, f)
    try:
        code = main(argv)
    finally:
        getattr(f, "restore", lambda: None)()
        monkeypatch.undo()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("seqmamba ")]
    assert code == status, err[-2000:]
    assert len(lines) == 1 and LINE.match(lines[0]), err[-2000:]
    assert named in lines[0], lines[0]
    assert "Traceback" not in err
    assert snapshot(f.root) == before
    assert not f.out.exists()
    return lines[0]


Y = lambda f, name: str(f.root / "configs" / name)  # noqa: E731
BOUNDS = [  # hangs and sizes: refused at once, before any work
    *[pytest.param(lambda f, c=command: [*c(f), "--config", Y(f, "bomb.yaml")], "bomb.yaml",
                   id=f"bomb-{command.__name__}")
      for command in (pretrain, finetune, audio_train, sc09_train)],
    *[pytest.param(lambda f, c=command: [*c(f), f"--config={Y(f, 'recursive.yaml')}"], "recursive.yaml",
                   id=f"recursive-alias-{command.__name__}")
      for command in (pretrain, finetune, audio_train, sc09_train)],
    *[pytest.param(lambda f, c=command: [*c(f), "--config", Y(f, "names-bomb.yaml")], "bomb.yaml",
                   id=f"config-naming-a-bomb-{command.__name__}") for command in (pretrain, finetune)],
    pytest.param(lambda f: pretrain(f, "--model.backbone", Y(f, "bomb.yaml")), "bomb.yaml", id="bomb-as-a-preset"),
    pytest.param(lambda f: pretrain(f, "--config", Y(f, "deep.yaml")), "deep.yaml", id="deeply-nested-config"),
    pytest.param(lambda f: pretrain(f, "--data.warmup_seq_lens", BOMB.replace("\n", ", ").join("{}")),
                 "--data.warmup_seq_lens", id="bomb-inline-in-a-setting"),
    pytest.param(lambda f: fetch(f, Y(f, "manifest-bomb.yaml")), "manifest-bomb.yaml", id="bomb-fetch-manifest"),
    pytest.param(lambda f: fetch(f, Y(f, "recursive.yaml")), "recursive.yaml", id="recursive-fetch-manifest"),
    pytest.param(lambda f: fetch(f, Y(f, "deep.yaml")), "deep.yaml", id="deep-fetch-manifest"),
    pytest.param(lambda f: ["data", "make-piano", "--out", str(f.out), "--minutes", "1000000"], "--minutes",
                 id="make-piano-million-minutes"),
    pytest.param(lambda f: ["data", "make-piano", "--out", str(f.out), "--minutes", "5000"], "--minutes",
                 id="make-piano-more-than-the-corpus"),
    pytest.param(lambda f: ["data", "make-digits", "--out", str(f.out), "--per_voice", str(10**9)], "--per_voice",
                 id="make-digits-billion-takes"),
    *[pytest.param(lambda f, v=value: generate(f, f"--seconds={v}"), "--seconds", id=f"generate-seconds-{value}")
      for value in ("nan", "inf", "-inf", "1e6", "1e300")],
    pytest.param(lambda f: generate(f, "--n", str(10**12)), "--n", id="generate-n-1e12"),
    pytest.param(lambda f: generate(f, "--n", "1000000000", "--seconds", "10"), "--n", id="generate-1e9-long-clips"),
    *[pytest.param(lambda f, v=value: score(f, "--mis_pairs", v), "--mis_pairs", id=f"score-mis-pairs-{value}")
      for value in (str(10**10), str(10**15))],
    *[pytest.param(lambda f, c=command, k=key: [*c(f), k, "-4"], key.split(".")[-1], id=f"negative-{command.__name__}")
      for command, key in ((pretrain, "--model.backbone.d_model"), (finetune, "--model.backbone.d_model"),
                           (audio_train, "--model.unet.d_model"), (sc09_train, "--model.resnext.cardinality"))],
    pytest.param(lambda f: pretrain(f, "--model.backbone.n_layer", "0"), "n_layer", id="zero-layers"),
    pytest.param(lambda f: pretrain(f, "--model.backbone.d_state", "-1"), "d_state", id="negative-state"),
    *[pytest.param(lambda f, c=command: [*c(f), "--trainer.devices", "0"], "devices",
                   id=f"devices-0-{command.__name__}")
      for command in (pretrain, finetune, audio_train, sc09_train)],
    *[pytest.param(lambda f, c=command, k=key, v=value: [*c(f), k, v], key.split(".")[-1],
                   id=f"{key}-{value}-{command.__name__}")
      for command in (pretrain, finetune) for key, value in (("--data.rc_prob", "2"), ("--data.rc_prob", "-0.5"),
                                                       ("--data.max_n_fraction", "1.5"))],
]


@pytest.mark.parametrize("argv, named", BOUNDS)
def test_hangs_and_sizes_are_refused_at_once(fx, capsys, monkeypatch, argv, named):
    run_case(capsys, monkeypatch, fx, argv(fx), 2, named)


S = lambda f, name: f.root / "species" / name  # noqa: E731
A = lambda f, name: str(f.root / "audio" / name)  # noqa: E731
TRACEBACKS = [  # what used to end in a traceback: (argv, status, named, patch)
    pytest.param(lambda f: audio_train(f, "--data.root", A(f, "zero-hz")), 2, "zero-hz", None, id="0-hz-wavs"),
    pytest.param(lambda f: pretrain(f, "--data.fasta", str(f.root / "truncated.fa.gz")), 2, "truncated.fa.gz", None,
                 id="truncated-bgzip-genome"),
    pytest.param(lambda f: finetune(f, manifest=S(f, "truncated.tsv")), 2, "truncated.fa.gz", None,
                 id="truncated-bgzip-species"),
    pytest.param(lambda f: finetune(f, manifest=S(f, "latin1.tsv")), 2, "latin1.tsv", None, id="latin1-manifest"),
    pytest.param(lambda f: pretrain(f, "--config", Y(f, "latin1.yaml")), 2, "latin1.yaml", None, id="latin1-config"),
    pytest.param(lambda f: fetch(f, Y(f, "manifest-latin1.yaml")), 2, "manifest-latin1.yaml", None,
                 id="latin1-fetch-manifest"),
    pytest.param(lambda f: score(f, "--likelihoods", A(f, "latin1.tsv")), 2, "latin1.tsv", None,
                 id="latin1-likelihoods"),
    pytest.param(lambda f: score(f, "--out", str(f.root / "notes.txt" / "s.json")), 2, "notes.txt", None,
                 id="json-under-a-file"),
    pytest.param(lambda f: score(f, "--out", str(f.root / "audio")), 2, "--out", None, id="json-naming-a-folder"),
    pytest.param(lambda f: classify(f, "reads.fa"), 2, "reads.fa", unreadable("reads/reads.fa"), id="unreadable-reads"),
    pytest.param(lambda f: pretrain(f), 2, "lambda.fa", unreadable("lambda.fa"), id="unreadable-genome"),
    pytest.param(lambda f: finetune(f), 2, "species.tsv", unreadable("species/species.tsv"),
                 id="unreadable-manifest"),
    pytest.param(lambda f: pretrain(f, "--config", Y(f, "latin1.yaml")), 2, "latin1.yaml",
                 unreadable("configs/latin1.yaml"), id="unreadable-config"),
    pytest.param(lambda f: fetch(f, Y(f, "manifest-bomb.yaml")), 2, "manifest-bomb.yaml",
                 unreadable("configs/manifest-bomb.yaml"), id="unreadable-fetch-manifest"),
    pytest.param(lambda f: score(f, "--likelihoods", A(f, "half.tsv")), 2, "half.tsv", unreadable("audio/half.tsv"),
                 id="unreadable-likelihoods"),
    pytest.param(lambda f: classify(f, "reads.fa"), 2, "predictions.tsv",
                 failing("os.replace", errno.ENOSPC, "No space left on device"), id="classify-disk-full"),
    pytest.param(lambda f: classify(f, "reads.fa"), 2, "predictions.tsv",
                 failing("os.replace", errno.EROFS, "Read-only file system"), id="classify-read-only"),
    pytest.param(lambda f: generate(f), 2, "No space left",
                 failing("soundfile.write", errno.ENOSPC, "No space left on device", 0), id="generate-disk-full"),
    pytest.param(lambda f: generate(f), 2, "Read-only",
                 failing("os.replace", errno.EROFS, "Read-only file system"), id="generate-read-only"),
    pytest.param(lambda f: classify(f, "reads.fa"), 130, "Ctrl+C",
                 interrupted("seqmamba.commands.classify.predict_logits"), id="classify-ctrl-c"),
    pytest.param(lambda f: generate(f), 130, "Ctrl+C", interrupted("seqmamba.generate.generate"),
                 id="generate-ctrl-c"),
    pytest.param(lambda f: generate(f), 130, "Ctrl+C", interrupted("seqmamba.spectrograms.spectrogram_sheet"),
                 id="generate-ctrl-c-while-writing"),
    pytest.param(lambda f: generate(f, "--prompt", A(f, "zero-hz/piano-1.wav")), 2, "piano-1.wav", None,
                 id="generate-0-hz-prompt"),
]


@pytest.mark.parametrize("argv, status, named, patch", TRACEBACKS)
def test_what_was_a_traceback_is_one_line(fx, capsys, monkeypatch, argv, status, named, patch):
    run_case(capsys, monkeypatch, fx, argv(fx), status, named, patch)


SILENT = [  # what was accepted silently or gave a wrong result: (argv, named, problem)
    *[pytest.param(lambda f, n=name: classify(f, "reads.fa", n), name, "NUL bytes", id=f"nul-{name}")
      for name in ("nul.fa", "nul-title.fa", "nul.fq", "nul.fa.gz")],
    pytest.param(lambda f: classify(f, "reads.fa", "reads.fa"), "reads.fa", "given twice", id="reads-given-twice"),
    pytest.param(lambda f: classify(f, "reads.fa", "../reads/reads.fa"), "reads.fa", "given twice",
                 id="reads-given-twice-by-another-path"),
    pytest.param(lambda f: classify(f, "reads.fa", "linked.fa"), "linked.fa", "given twice", id="reads-and-a-link"),
    *[pytest.param(lambda f, n=name: finetune(f, manifest=S(f, f"{n}.tsv")), f"{name}.tsv", "also species",
                   id=f"one-fasta-two-species-{name}") for name in ("twice", "twice-dot", "twice-link")],
    *[pytest.param(lambda f, n=name: finetune(f, manifest=S(f, f"{n}.tsv")), f"{name}.tsv", "rename the species",
                   id=f"species-named-{name}") for name in ("unclassified", "empty", "Unclassified")],
    pytest.param(lambda f: score(f, "--likelihoods", A(f, "half.tsv")), "half.tsv", "no likelihood for 2 of the 3",
                 id="likelihoods-for-a-third-of-the-clips"),
    pytest.param(lambda f: score(f, "--likelihoods", A(f, "duplicate.tsv")), "duplicate.tsv:5", "a.wav again",
                 id="duplicate-likelihood-rows"),
    pytest.param(lambda f: score(f, "--likelihoods", A(f, "duplicate-abs.tsv")), "duplicate-abs.tsv:5", "again",
                 id="duplicate-likelihood-rows-by-path"),
    pytest.param(lambda f: score(f, "--likelihoods", A(f, "nan.tsv")), "nan.tsv:2", "not finite",
                 id="nan-likelihood"),
    pytest.param(lambda f: score(f, "--likelihoods", A(f, "missing.tsv")), "missing.tsv:4", "z.wav",
                 id="likelihood-of-a-missing-clip"),
    *[pytest.param(lambda f, u=url: fetch(f, "hg38", "--base_url", u), url, "https://", id=f"base-url-{url[:5]}")
      for url in ("file:///tmp", "ftp://mirror.example.org", "mirror/", "FILE:///etc")],
    *[pytest.param(lambda f, n=name: ["data", "apes", "--maf", str(f.root / "maf" / n), "--out",
                                     str(f.root / "maf" / "out")],
                   name, problem, id=f"apes-{name}")
      for name, problem in (("nul.maf", "NUL"), ("latin1.maf", "non-ASCII"), ("mice.maf", "no rows of human"),
                            ("truncated.maf.gz", "breaks off"), ("missing.maf", "no such file"))],
    pytest.param(lambda f: pretrain(f, "--data.fasta", str(f.root / "crlf.fa")), "crlf.fa", "dos2unix",
                 id="crlf-genome"),
    pytest.param(lambda f: finetune(f, manifest=S(f, "crlf.tsv")), "crlf.fa", "dos2unix", id="crlf-species-fasta"),
]


@pytest.mark.parametrize("argv, named, problem", SILENT)
def test_what_was_silent_or_wrong_is_refused(fx, capsys, monkeypatch, argv, named, problem):
    assert problem in run_case(capsys, monkeypatch, fx, argv(fx), 2, named)


NAN = [  # a model whose outputs are NaN stops with one line naming its checkpoint, and writes nothing
    *[pytest.param(lambda f, k=kind, e=extra: classify(f, "reads.fa", ckpt=getattr(f, f"cls_{k}"), extra=e),
                   f"cls-{kind}.ckpt", id=f"classify-{kind}{'-'.join(extra)}")
      for kind in ("overflow", "nan") for extra in ((), ("--batch_tokens", "4"), ("--min_confidence", "0.9"))],
    *[pytest.param(lambda f, k=kind, e=extra: generate(f, *e, ckpt=getattr(f, f"unet_{k}")), f"unet-{kind}.ckpt",
                   id=f"generate-{kind}{'-'.join(extra)}")
      for kind in ("overflow", "nan") for extra in ((), ("--temperature", "0"), ("--batch_size", "1"))],
]


@pytest.mark.parametrize("argv, named", NAN)
def test_nan_outputs_stop_with_one_line(fx, capsys, monkeypatch, argv, named):
    assert "NaN" in run_case(capsys, monkeypatch, fx, argv(fx), 2, named)


def test_resuming_with_another_batch_size_is_refused(tmp_path, capsys):
    genome = tmp_path / "lambda.fa"
    shutil.copy(LAMBDA, genome)
    run_dir = tmp_path / "run"
    assert main(["pretrain", "--data.fasta", str(genome), "--out", str(run_dir), *TINY,
                 "--trainer.max_epochs", "1"]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path)
    assert main(["pretrain", "--config", str(run_dir / "config.yaml"), "--resume", "last", "--trainer.max_epochs", "2",
                 "--data.batch_size", "8"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("seqmamba ")]
    assert len(lines) == 1 and "data.batch_size" in lines[0] and "trained with 4" in lines[0]
    assert snapshot(tmp_path) == before


def test_a_disk_filling_during_training_is_one_line_and_keeps_last(tmp_path, capsys, monkeypatch):
    from lightning.fabric.loggers.csv_logs import _ExperimentWriter

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "logs" / "metrics.csv"))
    monkeypatch.setattr(_ExperimentWriter, "save", full)
    genome = tmp_path / "lambda.fa"
    shutil.copy(LAMBDA, genome)
    code = main(["pretrain", "--data.fasta", str(genome), "--out", str(tmp_path / "run"), *TINY,
                 "--trainer.max_epochs", "1"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("seqmamba ")]
    assert code == 1 and len(lines) == 1 and "disk filled" in lines[0] and "Traceback" not in err
    assert "metrics.csv" in lines[0] and "--resume last" in lines[0]


def test_empty_read_files_are_named_in_a_warning(fx, tmp_path, capsys):
    out = tmp_path / "p.tsv"
    assert main(["classify", "--ckpt", str(fx.cls), "--out", str(out), str(fx.root / "reads" / "reads.fa"),
                 str(fx.root / "reads" / "empty.fa")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "empty.fa" in warnings[0] and "no reads" in warnings[0]
    rows = [line.split("\t") for line in (tmp_path / "p.summary.tsv").read_text().splitlines()[1:]]
    assert sum(int(row[2]) for row in rows if row[0].endswith("empty.fa")) == 0
    assert sum(int(row[2]) for row in rows if row[0].endswith("reads.fa")) == 2


def test_a_wav_with_a_0_hz_header_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="0 Hz"):
        load_audio(wav_with_rate(tmp_path / "zero.wav", 0))


def test_the_probe_holds_at_least_100_cases():
    assert len(BOUNDS) + len(TRACEBACKS) + len(SILENT) + len(NAN) >= 100
