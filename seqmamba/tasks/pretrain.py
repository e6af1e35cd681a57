"""`seqmamba pretrain`: LightningCLI over the LM task and the DNA data, with a run directory.

A run directory holds config.yaml (resolved), checkpoints/, logs/metrics.csv, tensorboard/,
loss.png and summary.json. `--resume last` continues from checkpoints/last.ckpt.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from seqmamba.runs import perplexity_line, plot_losses, write_summary
from seqmamba.tasks.dna_data import DNADataModule
from seqmamba.tasks.language_model import LanguageModelTask


class PretrainCLI(LightningCLI):
    """LightningCLI whose Trainer logs, checkpoints and saves its config into one run directory."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--run_dir", type=str, default="runs/pretrain", help="where everything of this run goes")
        parser.add_argument("--resume", type=str | None, default=None,
                            help="checkpoint to continue from, or 'last' for RUN_DIR/checkpoints/last.ckpt")

    @property
    def run_dir(self) -> Path:
        return Path(self.config["run_dir"])

    def instantiate_trainer(self, **kwargs):
        run_dir = self.run_dir
        kwargs.update(
            default_root_dir=str(run_dir),
            logger=[CSVLogger(run_dir, name="", version=fresh_log_folder(run_dir)),
                    TensorBoardLogger(run_dir, name="", version="tensorboard")],
            callbacks=[ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="step{step}", monitor="val/loss",
                                       save_last=True, auto_insert_metric_name=False),
                       LearningRateMonitor(logging_interval="step")],
        )
        return super().instantiate_trainer(**kwargs)


def fresh_log_folder(run_dir: Path) -> str:
    """logs, then logs-1, logs-2 ... for resumed runs: Lightning's CSV logger would overwrite a used folder."""
    name, k = "logs", 0
    while (run_dir / name / "metrics.csv").exists():
        k += 1
        name = f"logs-{k}"
    return name


def trainer_defaults() -> dict:
    """bf16 on GPUs (all of them, through DDP), float32 on CPU; epochs re-draw windows (and warm up L)."""
    on_gpu = torch.cuda.is_available()
    return {"precision": "bf16-mixed" if on_gpu else "32-true", "gradient_clip_val": 1.0,
            "reload_dataloaders_every_n_epochs": 1, "log_every_n_steps": 10}


def main(args: list[str]) -> dict:
    """Parse, train, evaluate on the held-out split, and leave the run's plot and summary."""
    cli = PretrainCLI(LanguageModelTask, DNADataModule, args=args, run=False, save_config_callback=None,
                      trainer_defaults=trainer_defaults(), seed_everything_default=0)
    run_dir, trainer, model, data = cli.run_dir, cli.trainer, cli.model, cli.datamodule
    resume = cli.config["resume"]
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_name = "config.yaml" if resume is None else "config-resumed.yaml"
        cli.parser.save(cli.config, run_dir / config_name, overwrite=True, multifile=False)
    trainer.fit(model, datamodule=data, ckpt_path=resume)
    (metrics,) = trainer.validate(model, datamodule=data, verbose=False)
    if not trainer.is_global_zero:
        return {}
    baseline = data.unigram_perplexity("valid")
    summary = {"val_ppl": metrics["val/ppl"], "val_bits_per_base": metrics["val/bits_per_token"],
               "unigram_ppl": baseline, "parameters": model.model.num_parameters(),
               "steps": trainer.global_step, "checkpoint": str(run_dir / "checkpoints" / "last.ckpt")}
    write_summary(run_dir, summary)
    plot_losses(sorted(run_dir.glob("logs*/metrics.csv")), run_dir / "loss.png", baseline_loss=math.log(baseline))
    print(perplexity_line(summary["val_ppl"], baseline))
    print(f"run directory: {run_dir} (loss.png, summary.json, checkpoints/)")
    return summary
