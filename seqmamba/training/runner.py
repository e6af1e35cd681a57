"""The one run machinery behind every training command (`pretrain`, `finetune`, `audio train`, `sc09 train-classifier`).

A command names its LightningModule, its DataModule and a `finish` function; `run_training` gives it the
same flags and the same guarantees:

- inputs are checked (config files, settings, data, the checkpoint to resume) before anything is written;
- a run directory that holds a run is never touched without `--resume` or `--overwrite`;
- `checkpoints/last.ckpt` is rewritten every `--checkpoint_every_n_steps` steps, at every epoch end and at
  the end, atomically; `best.ckpt` keeps the best held-out loss; a resumed run continues from the exact batch;
- SIGTERM / SIGINT finish the current step, save `last.ckpt`, print how to resume, exit 128 + signal;
- a diverged loss stops the run with one line, and no NaN reaches a checkpoint or `summary.json`;
- Lightning's chatter is hidden unless `--verbose`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import shutil
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import lightning
import torch
import yaml
from jsonargparse import ArgumentError
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from seqmamba.training.checkpoints import AtomicCheckpointIO, check_state_dict_fits, load_checkpoint
from seqmamba.errors import InputError, RunFailed, RunInterrupted
from seqmamba.training.summaries import plot_losses, write_summary
from seqmamba.training.loaders import resume_mid_epoch

RUN_MARKERS = ("config.yaml", "checkpoints", "summary.json")  # any of these: the folder holds a run
RUN_OUTPUTS = ("config*.yaml", "checkpoints", "logs", "logs-*", "tensorboard", "summary.json", "*.png", "*.csv")


@dataclass
class FinishedRun:
    """What a command's `finish` gets once training has ended.

    `finish` runs on every process, since evaluation (`trainer.validate` / `test`) is collective under DDP; what
    other ranks print is dropped. It evaluates, writes its own files into `run_dir` when `is_global_zero`, prints
    its result lines and returns the summary; a `baseline_loss` key (nats per `loss_unit`, named by `baseline_name`)
    is drawn into loss.png, and a `warning` key is printed as the run's last line.
    """

    run_dir: Path
    trainer: lightning.Trainer
    model: lightning.LightningModule
    datamodule: lightning.LightningDataModule
    config: dict

    @property
    def is_global_zero(self) -> bool:
        """Whether this process writes the run's files."""
        return self.trainer.is_global_zero


def trainer_defaults() -> dict:
    """bf16 on GPUs (all of them, through DDP), float32 on CPU; epochs re-draw their samples."""
    on_gpu = torch.cuda.is_available()
    return {"precision": "bf16-mixed" if on_gpu else "32-true", "gradient_clip_val": 1.0,
            "reload_dataloaders_every_n_epochs": 1, "log_every_n_steps": 10}


class RunGuard(Callback):
    """Keeps last.ckpt fresh and whole, stops cleanly on signals, and stops on a diverged loss."""

    def __init__(self, last_path: Path, every_n_steps: int) -> None:
        self.last_path, self.every_n_steps = last_path, every_n_steps
        self.stop_signal: int | None = None
        self.batches_done = 0  # of the current epoch, saved with every checkpoint
        self._previous_handlers: dict[int, object] = {}

    def state_dict(self) -> dict[str, int]:
        return {"batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resuming: Lightning restores callbacks before it builds the train loader, which then skips these batches."""
        resume_mid_epoch(state.get("batches_done", 0))

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT only raise a flag; the step in flight finishes, then the run saves and stops."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous_handlers.setdefault(signum, signal.signal(signum, self._on_signal))

    def restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl+C: stop now, last.ckpt stays as it was
        self.stop_signal = signum

    def on_train_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        """Again, over the SIGTERM handler Lightning installs during fit: its own stop would skip our save."""
        self.install_signal_handlers()

    def save_last(self, trainer: lightning.Trainer) -> None:
        """Write last.ckpt if the weights are finite (a NaN checkpoint would be worse than an older one)."""
        if not all(torch.isfinite(p).all() for p in trainer.lightning_module.parameters()):
            self._diverged(trainer, "the weights")
        trainer.save_checkpoint(self.last_path)

    def _diverged(self, trainer: lightning.Trainer, what: str) -> None:
        kept = f"{self.last_path} keeps the last finite weights" if self.last_path.exists() else "no checkpoint was saved"
        raise RunFailed(f"training diverged: {what} became NaN or infinite at step {trainer.global_step}; {kept}. "
                        f"Lower the learning rate (model.lr) or raise model.warmup_fraction and start again")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss.detach()).all():
            self._diverged(trainer, "the training loss")
        if batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch's last batch: on_train_epoch_end saves (and stops) after its validation
        self.batches_done = batch_idx + 1  # what a checkpoint saved now must skip on resume
        if self._stop_requested(trainer):
            self.save_last(trainer)
            raise RunInterrupted(self.stop_signal or signal.SIGTERM, "")
        if trainer.global_step % self.every_n_steps == 0:
            self.save_last(trainer)

    def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self.batches_done = 0  # a checkpoint from here on starts the next epoch at its first batch
        self.save_last(trainer)
        if self._stop_requested(trainer):
            raise RunInterrupted(self.stop_signal or signal.SIGTERM, "")

    def _stop_requested(self, trainer: lightning.Trainer) -> bool:
        """A signal reached this process (or, under DDP, any process): all ranks stop at the same step."""
        stop = self.stop_signal is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        return stop


class RunCSVLogger(CSVLogger):
    """logs/metrics.csv, then logs-1/, logs-2/ ... for resumed runs, chosen when logging starts (after --overwrite)."""

    def _get_next_version(self) -> str:
        return fresh_name(Path(self.root_dir), "logs", "/metrics.csv")


class RunCLI(LightningCLI):
    """LightningCLI whose Trainer logs, checkpoints and saves its config into one run directory."""

    default_run_dir = "runs/run"

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--run_dir", type=str, default=self.default_run_dir, help="where everything of this run goes")
        parser.add_argument("--resume", type=str | None, default=None,
                            help="continue a run: 'last' (RUN_DIR/checkpoints/last.ckpt) or a checkpoint path")
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="start over in a RUN_DIR that holds a run, deleting its checkpoints, logs and results")
        parser.add_argument("--checkpoint_every_n_steps", type=int, default=200,
                            help="rewrite RUN_DIR/checkpoints/last.ckpt every N optimizer steps (and at each epoch end)")
        parser.add_argument("--verbose", type=bool, default=False, help="show Lightning's info messages and warnings")

    def instantiate_trainer(self, **kwargs):
        run_dir = Path(self.config["run_dir"])
        every = self.config["checkpoint_every_n_steps"]
        if every < 1:
            raise InputError("--checkpoint_every_n_steps", f"must be at least 1, got {every}")
        self.guard = RunGuard(run_dir / "checkpoints" / "last.ckpt", every)
        kwargs.update(
            default_root_dir=str(run_dir),
            logger=[RunCSVLogger(run_dir, name=""),
                    TensorBoardLogger(run_dir, name="", version="tensorboard")],
            callbacks=[self.guard,
                       ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val/loss",
                                       save_top_k=1, auto_insert_metric_name=False, enable_version_counter=False),
                       LearningRateMonitor(logging_interval="step")],
            plugins=[AtomicCheckpointIO()],
        )
        return super().instantiate_trainer(**kwargs)


def fresh_name(run_dir: Path, stem: str, suffix: str) -> str:
    """stem, then stem-1, stem-2 ... : resumed runs add files instead of overwriting the earlier ones."""
    name, k = stem, 0
    while (run_dir / f"{name}{suffix}").exists():
        k += 1
        name = f"{stem}-{k}"
    return name


def quiet_lightning(verbose: bool) -> None:
    """A user sees our lines and the progress bar; Lightning's info lines and warnings only with --verbose."""
    if verbose:
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"lightning(\.|$)")
    warnings.filterwarnings("ignore", module=r"torch\.utils\.data")
    warnings.filterwarnings("ignore", category=UserWarning, message=r".*(LightningCLI|litlogger|does not have many workers)")


def check_config_files(argv: list[str]) -> None:
    """YAML files named on the command line (and the files they name) exist and parse: errors name the file."""
    for flag, value in zip(argv, argv[1:]):
        if flag == "--config" or (flag.startswith("--") and value.endswith((".yaml", ".yml"))):
            check_yaml_file(Path(value), flag)


def check_yaml_file(path: Path, flag: str) -> None:
    """One config file: exists, parses, and every `.yaml` it names exists too."""
    if not path.is_file():
        raise InputError(path, f"no such config file (given to {flag}); presets live in configs/")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InputError(path, f"not valid YAML: {where}{getattr(error, 'problem', None) or error}") from None
    stack = [content]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and node.endswith((".yaml", ".yml")) and not Path(node).is_file():
            raise InputError(path, f"names {node!r}, which does not exist; presets live in configs/models/")


def parser_error(error: Exception) -> InputError:
    """jsonargparse's multi-line error -> one line naming the setting."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = lines[0] if lines else "invalid arguments"
    detail = next((line for line in lines[1:] if "Expected" in line or "Unrecognized" in line or "not" in line), "")
    return InputError("command line", f"{first} {detail}".strip()[:400] + " (run with --help for every setting)")


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    """--resume last|PATH -> the checkpoint path, refusing a resume that has nothing to resume."""
    if resume is None:
        return None
    if "://" in resume:
        load_checkpoint(resume)  # refuses remote checkpoints with the reason
    if resume == "last":
        path = run_dir / "checkpoints" / "last.ckpt"
        if not path.exists():
            raise InputError(path, "--resume last: no checkpoint to resume from (no earlier run here); drop --resume "
                                   "to start a new run, or give --run_dir of the run to continue")
        return path
    return Path(resume)


def holds_run(run_dir: Path) -> bool:
    """Whether a folder already holds a run's files."""
    return any((run_dir / marker).exists() for marker in RUN_MARKERS)


def check_run_dir(run_dir: Path, resume: Path | None, overwrite: bool) -> None:
    """A run directory is a folder that is new, resumed, or explicitly overwritten."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(run_dir, "--run_dir names an existing file; give a folder path")
    if resume is not None and overwrite:
        raise InputError(run_dir, "--resume and --overwrite contradict each other; choose one")
    if holds_run(run_dir) and resume is None and not overwrite:
        raise InputError(run_dir, "already holds a run; continue it with --resume last, start over with --overwrite "
                                  "(deletes its checkpoints and logs), or choose another --run_dir")


def clear_run_outputs(run_dir: Path) -> None:
    """--overwrite: delete an earlier run's files (only those a run writes)."""
    for pattern in RUN_OUTPUTS:
        for path in run_dir.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def json_safe(values: dict) -> dict:
    """Non-finite floats become null: summary.json must stay valid JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def parse(cli_class: type[RunCLI], model_class, datamodule_class, argv: list[str], default_config: str | None) -> RunCLI:
    """Build the CLI (model, data and trainer instantiated), turning parser errors into one line."""
    check_config_files(argv)
    if default_config is not None and "--config" not in argv:
        argv = ["--config", default_config, *argv]
    try:
        return cli_class(model_class, datamodule_class, args=argv, run=False, save_config_callback=None,
                         trainer_defaults=trainer_defaults(), seed_everything_default=0,
                         parser_kwargs={"exit_on_error": False})
    except ArgumentError as error:
        raise parser_error(error) from None


def run_training(command: str, model_class: type, datamodule_class: type, argv: list[str], *,
                 finish: Callable[[FinishedRun], dict], default_run_dir: str, default_config: str | None = None,
                 check: Callable[[lightning.LightningModule, lightning.LightningDataModule], None] | None = None) -> dict:
    """Parse, validate, train with checkpoints and signal handling, then `finish` on rank 0; returns the summary."""
    quiet_lightning("--verbose" in argv or "--verbose=true" in argv)
    cli_class = type("RunCLI", (RunCLI,), {"default_run_dir": default_run_dir})
    cli = parse(cli_class, model_class, datamodule_class, argv, default_config)
    config, trainer, model, data = cli.config, cli.trainer, cli.model, cli.datamodule
    run_dir = Path(config["run_dir"])
    resume = resolve_resume(config["resume"], run_dir)
    rank_zero = trainer.is_global_zero
    if rank_zero:
        check_run_dir(run_dir, resume, config["overwrite"])
    if check is not None:
        check(model, data)
    data.setup("fit")  # reads the data now: a bad input fails before the run directory is touched
    if resume is not None:
        check_state_dict_fits(resume, load_checkpoint(resume), model)
    if rank_zero:
        if config["overwrite"]:
            clear_run_outputs(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        name = "config" if resume is None else fresh_name(run_dir, "config-resumed", ".yaml")
        cli.parser.save(config, run_dir / f"{name}.yaml", overwrite=True, multifile=False)
    guard = cli.guard
    guard.install_signal_handlers()
    try:
        trainer.fit(model, datamodule=data, ckpt_path=resume)
        if guard.stop_signal is None:
            guard.save_last(trainer)  # the final weights, whatever the epoch or step count
    except RunInterrupted as stopped:
        raise RunInterrupted(stopped.signum, resume_hint(command, run_dir, guard, trainer), rank_zero) from None
    except SIGTERMException:  # a signal before training started (sanity check), when Lightning's handler was active
        kept = f"the latest checkpoint is {guard.last_path}" if guard.last_path.exists() else "no checkpoint was saved"
        raise RunInterrupted(signal.SIGTERM, f"SIGTERM received before training started; {kept}", rank_zero) from None
    finally:
        guard.restore_signal_handlers()
        resume_mid_epoch(0)  # nothing pending leaks into another run in this process
    if guard.stop_signal is not None:  # a signal during the last validation: fit ended, the final save was skipped
        guard.save_last(trainer)
        raise RunInterrupted(guard.stop_signal, resume_hint(command, run_dir, guard, trainer), rank_zero)
    with contextlib.redirect_stdout(sys.stdout if rank_zero else io.StringIO()):
        summary = finish(FinishedRun(run_dir, trainer, model, data, config))
    if not rank_zero:
        return {}
    summary = json_safe({**summary, "steps": trainer.global_step, "checkpoint": str(guard.last_path)})
    write_summary(run_dir, summary)
    plot_losses(sorted(run_dir.glob("logs*/metrics.csv")), run_dir / "loss.png", summary.get("baseline_loss"),
                summary.get("baseline_name", "baseline"), summary.get("loss_unit", "token"))
    print(f"run directory: {run_dir} (summary.json, loss.png, checkpoints/)")
    if summary.get("warning"):
        print(summary["warning"])
    return summary


def resume_hint(command: str, run_dir: Path, guard: RunGuard, trainer: lightning.Trainer) -> str:
    """The line a stopped run ends with."""
    name = signal.Signals(guard.stop_signal or signal.SIGTERM).name
    return (f"{name} received: saved {guard.last_path} at step {trainer.global_step}; continue with "
            f"`seqmamba {command} --config {run_dir / 'config.yaml'} --resume last`")
