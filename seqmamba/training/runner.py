"""The one run machinery behind every training command (`pretrain`, `finetune`, `audio train`, `sc09 train-classifier`).

A command names its LightningModule, its DataModule and a `finish` function; `run_training` gives it the
same flags and the same guarantees:

- inputs are checked (config files, settings, data, the checkpoint to resume) before anything is written;
- a run directory is new or empty, or holds a run that is resumed or, with `--overwrite`, replaced: only the files
  the run recorded writing are removed (`training/run_folder.py`), and one command at a time writes into it;
- `checkpoints/last.ckpt` is rewritten every `--checkpoint_every_n_steps` steps, at every epoch end and at
  the end, atomically; `best.ckpt` keeps the best held-out loss; a resumed run continues from the exact batch;
- SIGTERM / SIGINT finish the current step (or evaluation batch), save `last.ckpt`, print how to resume, exit
  128 + signal;
- a diverged loss stops the run with one line, and no NaN reaches a checkpoint or `summary.json`;
- Lightning's chatter is hidden unless `--verbose`.

Parse errors and `--help` go to the dispatcher (`seqmamba/cli.py`), which prints them the same way for every word.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import math
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import lightning
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from seqmamba.training.checkpoints import AtomicCheckpointIO, check_state_dict_fits, load_checkpoint
from seqmamba.errors import HelpRequested, InputError, RunFailed, RunInterrupted
from seqmamba.outputs import folder_lock
from seqmamba.training.run_folder import check_run_dir, record_run_files, remove_run_files, resume_command
from seqmamba.training.summaries import plot_losses, write_summary
from seqmamba.training.loaders import forget_resume_point, resume_mid_epoch
from seqmamba.yaml_files import load_yaml, parse_yaml

OLD_CONFIG_KEYS = {"run_dir": "out", "seed_everything": "seed"}  # in config.yaml of earlier runs; until the next release
HIDDEN = "==SUPPRESS=="  # the parser's mark for a setting that is read but left out of --help


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
        return {"batches_done": self.batches_done}  # read back by on_load_checkpoint, with the checkpoint's epoch

    def on_load_checkpoint(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                           checkpoint: dict) -> None:
        """Resuming: Lightning restores callbacks before it builds a train loader; that epoch's loaders skip these."""
        state = checkpoint.get("callbacks", {}).get(self.state_key, {})
        resume_mid_epoch(checkpoint["epoch"], state.get("batches_done", 0))

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

    def on_validation_batch_end(self, trainer: lightning.Trainer, *args) -> None:
        self._stop_evaluation(trainer)

    def on_test_batch_end(self, trainer: lightning.Trainer, *args) -> None:
        self._stop_evaluation(trainer)

    def _stop_evaluation(self, trainer: lightning.Trainer) -> None:
        """The final evaluation (after fit, last.ckpt saved) stops after the batch a signal came in: a resume redoes it.

        Validation during fit runs on: the run stops at the epoch's end, where last.ckpt is saved.
        """
        if trainer.state.fn != TrainerFn.FITTING and self._stop_requested(trainer):
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

    command = "run"
    default_run_dir = "runs/run"

    def add_default_arguments_to_parser(self, parser) -> None:
        """`--seed`, the name every word uses (Lightning's own, `seed_everything`, is read from older config files)."""
        parser.add_argument("--seed", type=int | None, default=None,
                            help="random seed of the weights and the data order (default 0)")
        parser.add_argument("--seed_everything", type=int | None, default=None, help=HIDDEN)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--out", type=str | None, default=None, help="the run folder: config.yaml, checkpoints/, "
                            f"logs, summary.json (default {self.default_run_dir})")
        parser.add_argument("--run_dir", type=str | None, default=None, help=HIDDEN)
        parser.add_argument("--resume", type=str | None, default=None,
                            help="continue a run: 'last' (RUN_DIR/checkpoints/last.ckpt) or a checkpoint path")
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="start over in a RUN_DIR that holds a run, deleting the files it wrote (its checkpoints, "
                                 "logs and results); read from the command line only, never from a config file")
        parser.add_argument("--checkpoint_every_n_steps", type=int, default=200,
                            help="rewrite RUN_DIR/checkpoints/last.ckpt every N optimizer steps (and at each epoch end)")
        parser.add_argument("--verbose", type=bool, default=False, help="show Lightning's info messages and warnings")

    def parse_arguments(self, parser, args) -> None:
        """--help hands the parser to the dispatcher; keys of older config files are read under their new names."""
        if help_flag := next((arg for arg in args if arg in ("-h", "--help", "--help-all")), None):
            raise HelpRequested(parser, help_flag == "--help-all")
        super().parse_arguments(parser, args)
        config = self.config
        for old, new in OLD_CONFIG_KEYS.items():
            if config[old] is not None:
                print(f"seqmamba {self.command}: the config key {old} is now {new}; the old spelling works until the "
                      "next release", file=sys.stderr)
                config[new] = config[old] if config[new] is None else config[new]
                config[old] = None
        config.out = self.default_run_dir if config.out is None else config.out
        config.seed = config.seed_everything = 0 if config.seed is None else config.seed  # Lightning seeds from the latter

    def instantiate_classes(self) -> None:
        """Build model, data and trainer; a component's ValueError becomes one line naming its setting's key."""
        with settings_named(self.config):
            super().instantiate_classes()

    def instantiate_trainer(self, **kwargs):
        if not str(self.config["out"]).strip():
            raise InputError("--out", "is empty; name the folder of the run (e.g. runs/my-run)")
        run_dir = Path(self.config["out"])
        every = self.config["checkpoint_every_n_steps"]
        if every < 1:
            raise InputError("--checkpoint_every_n_steps", f"must be at least 1, got {every}")
        self.guard = RunGuard(run_dir / "checkpoints" / "last.ckpt", every)
        kwargs.update(batch_limits(self.config["trainer"]))
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


def batch_limits(trainer_config: dict) -> dict[str, int]:
    """`--trainer.limit_val_batches 1` means one batch, in fit and in the final evaluation alike.

    The parser reads 1 as 1.0 (Lightning's signature lists float first), which Lightning takes for all batches.
    """
    keys = ("limit_train_batches", "limit_val_batches", "limit_test_batches")
    return {key: 1 for key in keys if trainer_config.get(key) == 1}


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
    pairs = [(flag, value) for flag, value in zip(argv, argv[1:]) if flag.startswith("--")]
    pairs += [tuple(arg.split("=", 1)) for arg in argv if arg.startswith("--") and "=" in arg]
    for flag, value in pairs:
        if flag == "--config" or value.endswith((".yaml", ".yml")):
            check_yaml_file(Path(value), flag, set())
        elif "&" in value and "*" in value:  # the parser reads values as YAML too: an inline alias bomb
            parse_yaml(value, flag, "setting")


def check_yaml_file(path: Path, flag: str, seen: set[Path]) -> None:
    """One config file: exists, parses (aliases bounded), and every `.yaml` it names (beside it, as jsonargparse
    reads it) does too."""
    if not path.is_file():
        raise InputError(path, f"no such config file (given to {flag}); presets live in configs/")
    if path.resolve() in seen:
        return
    seen.add(path.resolve())
    stack = [load_yaml(path, "config file")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and node.endswith((".yaml", ".yml")):
            preset = path.parent / node
            if not preset.is_file():
                raise InputError(path, f"names {node!r}, which does not exist beside it; presets live in configs/models/")
            check_yaml_file(preset, str(path), seen)


def setting_error(error: ValueError, keys: list[str]) -> InputError:
    """'lr must be positive, got 0; betas ...' -> one line naming each setting by its key ('model.lr must be ...').

    Components raise ValueError naming their own field first; jsonargparse may wrap that in lines of its own.
    """
    keys = sorted(keys, key=lambda key: not key.startswith(("model.", "data.")))  # the project's settings first
    lines = [line.strip().removeprefix("- ") for line in str(error).splitlines() if line.strip()]

    def key_of(problem: str) -> str | None:  # the first key with a part of that name, up to that part
        name = problem.split(" ", 1)[0]
        parts = next((key.split(".") for key in keys if name in key.split(".")), None)
        return ".".join(parts[: parts.index(name) + 1]) if parts else None

    found = next((line for line in lines if key_of(line)), lines[0] if lines else "invalid setting")
    problems = [" ".join([key_of(problem), problem.partition(" ")[2]]) if key_of(problem) else problem
                for problem in found.split("; ")]
    return InputError("config", "; ".join(problems))


@contextlib.contextmanager
def settings_named(config) -> Iterator[None]:
    """Around building from settings: a component's ValueError leaves as the one line naming the setting's key."""
    try:
        yield
    except InputError:
        raise
    except ValueError as error:
        raise setting_error(error, list(config.keys())) from None


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
                                   "to start a new run, or give --out of the run to continue")
        return path
    return Path(resume)


def json_safe(values: dict) -> dict:
    """Non-finite floats become null: summary.json must stay valid JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def parse(cli_class: type[RunCLI], model_class, datamodule_class, argv: list[str], default_config: str | None) -> RunCLI:
    """Build the CLI (model, data and trainer instantiated); a parser error propagates to the dispatcher."""
    check_config_files(argv)
    if default_config is not None and "--config" not in argv:
        argv = ["--config", default_config, *argv]
    try:
        return cli_class(model_class, datamodule_class, args=argv, run=False, save_config_callback=None,
                         trainer_defaults=trainer_defaults(), parser_kwargs={"exit_on_error": False})
    except MisconfigurationException as error:  # Trainer settings (e.g. --trainer.devices 0): Lightning names them
        raise InputError("command line", f"{str(error).splitlines()[0][:300]} (run with --help-all for every setting)") from None


def given_on_command_line(argv: list[str], flag: str) -> bool:
    """Whether the user typed `flag` (a config file cannot say it): --overwrite is an act, not a setting of the run."""
    return any(arg == flag or arg.startswith(f"{flag}=") for arg in argv)


def run_training(command: str, model_class: type, datamodule_class: type, argv: list[str], *,
                 finish: Callable[[FinishedRun], dict], default_run_dir: str, default_config: str | None = None,
                 check: Callable[[lightning.LightningModule, lightning.LightningDataModule], None] | None = None,
                 outputs: tuple[str, ...] = ()) -> dict:
    """Parse, validate, train with checkpoints and signal handling, then `finish` on rank 0; returns the summary.

    `outputs` names the files `finish` writes into the run directory, recorded as the run's own.
    """
    quiet_lightning("--verbose" in argv or "--verbose=true" in argv)
    cli_class = type("RunCLI", (RunCLI,), {"command": command, "default_run_dir": default_run_dir})
    cli = parse(cli_class, model_class, datamodule_class, argv, default_config)
    config, trainer, model, data = cli.config, cli.trainer, cli.model, cli.datamodule
    run_dir = Path(config["out"])
    resume = resolve_resume(config["resume"], run_dir)
    rank_zero = trainer.is_global_zero
    overwrite = config["overwrite"] and given_on_command_line(argv, "--overwrite")
    if rank_zero:
        check_run_dir(run_dir, resume, overwrite)
    if trainer.reload_dataloaders_every_n_epochs != 1:
        raise InputError("trainer.reload_dataloaders_every_n_epochs", "must be 1: every epoch's training batches are "
                         "drawn for that epoch, which is also what lets a resumed run draw them again")
    if check is not None:
        with settings_named(config):
            check(model, data)
    data.setup("fit")  # reads the data now: a bad input fails before the run directory is touched
    if resume is not None:
        checkpoint = load_checkpoint(resume)
        check_state_dict_fits(resume, checkpoint, model)
        check_same_batches(resume, checkpoint, data)
    with contextlib.ExitStack() as held:
        if rank_zero:  # one command at a time in a run folder, for the whole run
            held.enter_context(folder_lock(run_dir, "--out"))
            check_run_dir(run_dir, resume, overwrite)  # again: another command may have written here meanwhile
            start_run_folder(cli, run_dir, resume, overwrite, outputs)
        guard = cli.guard
        guard.install_signal_handlers()
        trained = False
        try:
            trainer.fit(model, datamodule=data, ckpt_path=resume)
            guard.save_last(trainer)  # the final weights, whatever the epoch or step count
            trained = True
            if guard.stop_signal is None:  # else a signal came during the last validation: stop now that it is saved
                with contextlib.redirect_stdout(sys.stdout if rank_zero else io.StringIO()):
                    summary = finish(FinishedRun(run_dir, trainer, model, data, config))  # the guard stops it per batch
            if guard.stop_signal is not None:
                raise RunInterrupted(guard.stop_signal, "")
        except (RunInterrupted, SIGTERMException) as stopped:
            if isinstance(stopped, RunInterrupted) or trained:  # SIGTERMException: Lightning's handler, in an evaluation
                signum = getattr(stopped, "signum", signal.SIGTERM)
                raise RunInterrupted(signum, resume_hint(command, run_dir, guard, trainer), rank_zero) from None
            kept = f"the latest checkpoint is {guard.last_path}" if guard.last_path.exists() else "no checkpoint was saved"
            raise RunInterrupted(signal.SIGTERM, f"SIGTERM received before training started; {kept}", rank_zero) from None
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            kept = f"{guard.last_path} keeps the last save" if guard.last_path.exists() else "no checkpoint was saved"
            raise RunFailed(f"the disk filled while writing {error.filename or run_dir}; {kept}. Free space and "
                            f"continue with `{resume_command(command, run_dir)}`") from None
        finally:
            guard.restore_signal_handlers()
            forget_resume_point()  # nothing pending leaks into another run in this process
        if not rank_zero:
            return {}
        summary = json_safe({**summary, "steps": trainer.global_step, "checkpoint": str(guard.last_path)})
        write_summary(run_dir, summary)
        plot_losses(sorted(run_dir.glob("logs*/metrics.csv")), run_dir / "loss.png", summary.get("baseline_loss"),
                    summary.get("baseline_name", "baseline"), summary.get("loss_unit", "token"))
        write_run_report(run_dir)
        print(f"run directory: {run_dir} (summary.json, loss.png, report.html, checkpoints/)")
        if summary.get("warning"):
            print(summary["warning"])
        return summary


def start_run_folder(cli: RunCLI, run_dir: Path, resume: Path | None, overwrite: bool,
                     outputs: tuple[str, ...]) -> None:
    """Clear an overwritten run, record the files this run will write, and save its config (without --overwrite)."""
    if overwrite:
        remove_run_files(run_dir)
    name = "config" if resume is None else fresh_name(run_dir, "config-resumed", ".yaml")
    logs = fresh_name(run_dir, "logs", "/metrics.csv")  # what RunCSVLogger will choose
    record_run_files(run_dir, [f"{name}.yaml", f"{logs}/metrics.csv", f"{logs}/hparams.yaml", "report.html", *outputs])
    config = cli.config.clone()
    config["overwrite"] = False  # `--config RUN_DIR/config.yaml` must never delete the run it describes
    for old in OLD_CONFIG_KEYS:
        config[old] = None  # left out of the file: the new names carry the values
    cli.parser.save(config, run_dir / f"{name}.yaml", overwrite=True, multifile=False)


def check_same_batches(path: Path, checkpoint: dict, data: lightning.LightningDataModule) -> None:
    """A resumed run skips the batches already trained on: only the same batch size makes that skip exact."""
    saved = checkpoint.get("datamodule_hyper_parameters", {}).get("batch_size")
    current = data.hparams.get("batch_size", getattr(data, "batch_size", None))
    if saved is not None and current is not None and saved != current:
        raise InputError("data.batch_size", f"is {current}, but {path} was trained with {saved}; resume with "
                                            f"data.batch_size {saved} (the run's own --config), or start a new run")


def write_run_report(run_dir: Path) -> None:
    """report.html beside the summary; the run has succeeded already, so a failure here is a note, not an error."""
    try:
        from apps.report import write_report

        write_report(run_dir)
    except Exception as error:  # noqa: BLE001  a page that could not be drawn must not fail a finished run
        print(f"note: report.html not written ({type(error).__name__}: {error}); try `seqmamba report {run_dir}`")



def resume_hint(command: str, run_dir: Path, guard: RunGuard, trainer: lightning.Trainer) -> str:
    """The line a stopped run ends with."""
    name = signal.Signals(guard.stop_signal or signal.SIGTERM).name
    return (f"{name} received: saved {guard.last_path} at step {trainer.global_step}; continue with "
            f"`{resume_command(command, run_dir)}`")
