"""Nothing the user owns is lost: --overwrite removes only a run's own files, one command at a time writes into a
folder, outputs never replace inputs or files we did not write, and a run's saved config resumes it.

Each case asserts the exit status, the one error line, and that every file of the folder is unchanged."""

import gzip
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_maf import TINY_MAF
from test_pretrain_cli import LAMBDA, pretrain
from test_run_integrity import error_line, snapshot

from seqmamba.cli import main
from seqmamba.outputs import LOCK_NAME, WRITTEN_NAME

USER_FILES = {"figure1.png": b"\x89PNG my figure", "measurements.csv": b"day,od600\n1,0.4\n",
              "logs/lab-notebook.txt": b"day 1: started the run\n"}


def add_user_files(folder: Path) -> None:
    for name, content in USER_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)


def user_files_kept(folder: Path) -> bool:
    return all((folder / name).read_bytes() == content for name, content in USER_FILES.items())


@pytest.fixture()
def genome(tmp_path):
    path = tmp_path / "lambda.fa"
    path.write_bytes(LAMBDA.read_bytes())
    return path


# -- 1. --overwrite deletes only what a run wrote; a folder of other files is never a run folder ----------------

def test_overwrite_removes_only_the_runs_own_files(tmp_path, genome, capsys, monkeypatch):
    mine = tmp_path / "analysis"
    mine.mkdir()
    add_user_files(mine)
    before = snapshot(mine)
    assert pretrain(mine, genome, "--trainer.max_epochs", "1", "--overwrite", "true") == 2
    assert "holds files that are not a seqmamba run (figure1.png, logs, measurements.csv)" in error_line(capsys)
    assert snapshot(mine) == before
    monkeypatch.chdir(mine)
    assert pretrain("", genome, "--trainer.max_epochs", "1") == 2  # not the working folder
    assert error_line(capsys).endswith("error: --out: is empty; name the folder of the run (e.g. runs/my-run)")
    assert snapshot(mine) == before

    run_dir = tmp_path / "run"  # a run from before runs recorded their files: read by the exact names a run writes
    for name in ("config.yaml", "summary.json", "loss.png", "checkpoints/last.ckpt", "logs/metrics.csv",
                 "logs-1/hparams.yaml", "tensorboard/events.out.tfevents.1.host.1.0"):
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text("old run\n")
    add_user_files(run_dir)
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "1", "--overwrite", "true") == 0
    assert user_files_kept(run_dir) and not (run_dir / "logs-1").exists()
    assert [p.name for p in (run_dir / "tensorboard").glob("events*")] != ["events.out.tfevents.1.host.1.0"]
    written = (run_dir / WRITTEN_NAME).read_text()
    assert '"checkpoints/last.ckpt"' in written and "lab-notebook" not in written and "figure1" not in written
    (run_dir / "notes.md").write_text("mine too\n")  # added after the run: a run of ours replaces only its own
    older_events = {p.name for p in (run_dir / "tensorboard").glob("events*")}
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "1", "--overwrite", "true") == 0
    assert user_files_kept(run_dir) and (run_dir / "notes.md").read_text() == "mine too\n"
    assert sorted(p.name for p in (run_dir / "logs").iterdir()) == ["hparams.yaml", "lab-notebook.txt", "metrics.csv"]
    events = {p.name for p in (run_dir / "tensorboard").glob("events*")}
    assert events and not events & older_events  # this run's, not older ones


# -- 2. one writer at a time: a second command into a held folder is refused ------------------------------------

def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding the folder's lock, as a running seqmamba command does."""
    folder.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'a'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
                               str(folder / LOCK_NAME)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_second_writer_into_a_held_folder_is_refused(tmp_path, genome, capsys, monkeypatch):
    import seqmamba.training.model_loading
    from seqmamba.nn.sashimi import Sashimi, SashimiConfig

    run_dir, out = tmp_path / "run", tmp_path / "clips"
    holders = [hold_lock(run_dir), hold_lock(out)]
    try:
        before = snapshot(run_dir), snapshot(out)
        assert pretrain(run_dir, genome, "--trainer.max_epochs", "1") == 2
        assert error_line(capsys) == (f"seqmamba pretrain: error: {run_dir}: another seqmamba command is writing into "
                                      "this folder now; wait for it to end or choose another --out")
        tiny = Sashimi(SashimiConfig(d_model=8, n_layers=1, pool=[2], outer="mamba", center="mamba", d_state=4))
        loaded = SimpleNamespace(module=tiny, data={"quantization": "mu-law", "bits": 8}, step=0, heldout_loss=None)
        monkeypatch.setattr(seqmamba.training.model_loading, "load_model", lambda path, kind, device: loaded)
        generate = ["audio", "generate", "--ckpt", "model.ckpt", "--n", "1", "--seconds", "0.001", "--device", "cpu"]
        assert main([*generate, "--out", str(out)]) == 2
        assert "another seqmamba command is writing into this folder now" in error_line(capsys, "audio generate")
        assert (snapshot(run_dir), snapshot(out)) == before
    finally:
        for holder in holders:
            holder.communicate("")
    assert main([*generate, "--out", str(out)]) == 0  # the lock is gone with its holder; its file does not block
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "sample_0.wav", "samples.tsv", "spectrograms.png"]


# -- 3. outputs never replace inputs, a checkpoint, or files seqmamba did not write ---------------------------

def test_outputs_never_replace_inputs_or_files_we_did_not_write(tmp_path, capsys):
    reads, ckpt, notes = tmp_path / "reads.fa", tmp_path / "model.ckpt", tmp_path / "notes.tsv"
    reads.write_text(">r1\nACGTACGT\n")
    ckpt.write_bytes(b"PK weights")
    notes.write_text("my\tnotes\n")
    os.link(reads, tmp_path / "same-reads.fa")
    maf = tmp_path / "tiny.maf"
    maf.write_text(TINY_MAF + "\na score=1\ns Hsap.22 400 4 + 1000 ACGT\ns Ppyg.22 0 4 + 700 ACGT\n")  # all four apes
    apes = tmp_path / "apes"
    apes.mkdir()
    (apes / "human.fa").write_text(">my own assembly\nACGT\n")
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "spectrograms.png").write_bytes(b"\x89PNG my sheet")
    before = snapshot(tmp_path)
    classify = ["classify", "--ckpt", str(ckpt), str(reads)]
    for out, problem in [(reads, f"--out names an input of this command ({reads})"),
                         (tmp_path / "same-reads.fa", f"--out names an input of this command ({reads})"),
                         (ckpt, f"--out names an input of this command ({ckpt})"),
                         (notes, "--out names an existing file that seqmamba did not write")]:
        assert main([*classify, "--out", str(out)]) == 2
        assert error_line(capsys, "classify") == f"seqmamba classify: error: {out}: {problem}; choose another " + (
            "output path" if "input" in problem else "output path or move it away")
    assert main(["data", "apes", "--maf", str(maf), "--out", str(apes)]) == 2
    assert error_line(capsys, "data apes") == (f"seqmamba data apes: error: {apes / 'human.fa'}: exists and was not written by "
                                          "seqmamba; move it away or choose another --out folder")
    assert main(["audio", "generate", "--ckpt", str(ckpt), "--out", str(samples)]) == 2
    assert error_line(capsys, "audio generate") == (f"seqmamba audio generate: error: {samples}: is not empty (holds spectrograms.png); "
                                           "give a new or empty --out folder (files already there are kept)")
    assert main(["sc09", "score", "--ckpt", str(ckpt), "--rows", "train", "--out", str(ckpt)]) == 2
    assert f"--out names an input of this command ({ckpt})" in error_line(capsys, "sc09 score")
    assert snapshot(tmp_path) == before

    ours = tmp_path / "apes-ours"  # what data apes wrote itself it may write again
    assert main(["data", "apes", "--maf", str(maf), "--out", str(ours)]) == 0
    assert main(["data", "apes", "--maf", str(maf), "--out", str(ours)]) == 0
    assert sorted(p.name for p in ours.iterdir() if not p.name.startswith(".")) == [
        "chimpanzee.fa", "gorilla.fa", "human.fa", "orangutan.fa", "species.tsv", "summary.tsv"]
    assert not list(tmp_path.rglob(".*tmp*"))
    gz = tmp_path / "reads.fa.gz"  # a gzip input is an input too, whatever its name says
    gz.write_bytes(gzip.compress(b">r\nACGT\n"))
    assert main(["classify", "--ckpt", str(ckpt), str(gz), "--out", str(gz)]) == 2
    assert "names an input" in error_line(capsys, "classify")


# -- 4. the README's resume of the demo run (saved with --overwrite true) works --------------------------------

def test_a_run_started_with_overwrite_resumes_from_its_saved_config(tmp_path, genome, capsys):
    run_dir = tmp_path / "demo"
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "1", "--overwrite", "true") == 0  # as `make demo`
    config = run_dir / "config.yaml"
    assert main(["pretrain", "--config", str(config), "--trainer.max_epochs", "2", "--resume", "last"]) == 0
    assert (run_dir / "config-resumed.yaml").is_file() and (run_dir / "logs-1" / "metrics.csv").is_file()
    assert "overwrite: false" in config.read_text()
    config.write_text(config.read_text().replace("overwrite: false", "overwrite: true"))  # as older runs saved it
    before = snapshot(run_dir)
    capsys.readouterr()
    assert main(["pretrain", "--config", str(config)]) == 2  # a config file cannot delete the run it describes
    assert "already holds a run; continue it with --resume last" in error_line(capsys)
    assert snapshot(run_dir) == before
    assert main(["pretrain", "--config", str(config), "--trainer.max_epochs", "3", "--resume", "last"]) == 0
    assert main(["pretrain", "--config", str(config), "--resume", "last", "--overwrite", "true"]) == 2
    assert "--resume and --overwrite contradict each other" in error_line(capsys)
