"""`seqmamba audio train | generate`: waveform models (a SaShiMi U-Net) trained in a run directory, and sampled.

train takes the run machinery's flags (`--config`, `--model.*`, `--data.*`, `--trainer.*`, `--run_dir`,
`--resume`, ...); summary.json gets parameters and val/test bits per sample.
generate writes DIR/sample_NNN.wav in ascending log-likelihood, DIR/samples.tsv (file, log_likelihood in
nats, exact under the model) and DIR/spectrograms.png.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from seqmamba.errors import InputError
from seqmamba.outputs import check_output_folder

USAGE = "usage: seqmamba audio train [--config YAML] [--data.root DIR] ... | seqmamba audio generate --ckpt CKPT ..."


def report(run) -> dict:
    """Bits per sample on the validation and test splits beside the uniform baseline, and the model's size."""
    from seqmamba.training.summaries import chance_warning

    (val,) = run.trainer.validate(run.model, datamodule=run.datamodule, verbose=False)
    (test,) = run.trainer.test(run.model, datamodule=run.datamodule, verbose=False)
    parameters = run.model.model.num_parameters()
    uniform = float(run.datamodule.hparams.bits)  # a uniform guess over 2**bits codes
    print(f"NLL {val['val/bits_per_sample']:.4f} bits per sample on validation, "
          f"{test['test/bits_per_sample']:.4f} on test (uniform {uniform:g} bits; {parameters / 1e6:.2f}M parameters)")
    warning = chance_warning("bits per sample", test["test/bits_per_sample"], uniform, "a uniform guess",
                             higher_is_better=False)
    return {"parameters": parameters, "val_bits_per_sample": val["val/bits_per_sample"],
            "test_bits_per_sample": test["test/bits_per_sample"], "val_loss": val["val/loss"],
            "uniform_bits_per_sample": uniform, "no_better_than_chance": warning is not None, "warning": warning,
            "baseline_loss": uniform * math.log(2), "baseline_name": f"uniform, {uniform:g} bits", "loss_unit": "sample"}


def check_vocabulary(model, data) -> None:
    """The U-Net must predict as many codes as the data's quantization has."""
    if model.model.config.vocab_size != data.num_classes:
        raise InputError("model.unet.vocab_size", f"is {model.model.config.vocab_size} but data.bits = "
                         f"{data.hparams.bits} gives {data.num_classes} codes; make them agree")


def train(argv: list[str]) -> dict:
    """Train a U-Net on an audio folder (SC09 or YouTubeMix layout)."""
    from seqmamba.tasks.audio_data import AudioDataModule
    from seqmamba.tasks.audio_model import AudioModelTask
    from seqmamba.training.runner import run_training

    return run_training("audio train", AudioModelTask, AudioDataModule, argv, finish=report,
                        default_run_dir="runs/audio", check=check_vocabulary)


def generate_parser() -> argparse.ArgumentParser:
    """The flags of `audio generate`."""
    parser = argparse.ArgumentParser(prog="seqmamba audio generate", description="sample clips from a trained U-Net")
    parser.add_argument("--ckpt", type=Path, required=True, help="checkpoint of `seqmamba audio train`")
    parser.add_argument("-o", "--out", type=Path, required=True, help="folder for the WAVs, samples.tsv, spectrograms")
    parser.add_argument("--n", type=int, default=64, help="clips to generate")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each clip, prompt included")
    parser.add_argument("--prompt", type=Path, help="audio file every clip continues")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass, (0, 1]")
    parser.add_argument("--batch-size", type=int, default=64, help="clips sampled at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--no-cuda-graphs", action="store_true", help="step eagerly on GPU (slower; for debugging)")
    return parser


def check_generate_args(args: argparse.Namespace) -> None:
    """Settings that cannot work, reported before the model is loaded."""
    from seqmamba.data.audio_io import SAMPLE_RATE

    one_sample = round(args.seconds * SAMPLE_RATE) >= 1
    for name, ok, rule in (("--n", args.n >= 1, "at least 1"), ("--seconds", one_sample, f"at least 1/{SAMPLE_RATE}"),
                           ("--temperature", args.temperature >= 0, "at least 0"),
                           ("--top-p", 0 < args.top_p <= 1, "in (0, 1]"),
                           ("--batch-size", args.batch_size >= 1, "at least 1")):
        if not ok:
            raise InputError(name, f"must be {rule}, got {getattr(args, name[2:].replace('-', '_'))}")
    if args.prompt is not None and not args.prompt.is_file():
        raise InputError(args.prompt, "no such audio file for --prompt")
    check_output_folder(args.out, "-o")
    if args.out.exists() and (any(args.out.glob("*.wav")) or (args.out / "samples.tsv").exists()):
        raise InputError(args.out, "already holds generated clips; choose another -o folder or remove them")


def load_unet(path: Path, device: torch.device):
    """The U-Net, its data's quantization (name, bits) and where it comes from, from an `audio train` checkpoint."""
    from seqmamba.training.checkpoints import load_checkpoint
    from seqmamba.nn.sashimi import Sashimi, SashimiConfig

    checkpoint = load_checkpoint(path)
    config = checkpoint.get("hyper_parameters", {}).get("unet")
    if config is None:
        raise InputError(path, "is not a `seqmamba audio train` checkpoint (no U-Net settings in it)")
    model = Sashimi(SashimiConfig(**config) if isinstance(config, dict) else config)  # a dict where the CLI built it
    weights = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(weights)
    data = checkpoint.get("datamodule_hyper_parameters", {})
    bits = data.get("bits", 8)
    return model.to(device).eval(), data.get("quantization", "mu-law"), bits, checkpoint_origin(path, checkpoint, bits)


def checkpoint_origin(path: Path, checkpoint: dict, bits: int) -> str:
    """Which weights a sample comes from: the checkpoint's path, step and held-out bits at its last validation."""
    heldout = [state.get("current_score") for name, state in checkpoint.get("callbacks", {}).items()
               if name.startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("monitor") == "val/loss"]
    score = next((float(s) for s in heldout if s is not None), None)
    heldout_bits = "no held-out NLL recorded" if score is None else f"held-out {score / math.log(2):.4f} bits per sample"
    return (f"{path} (step {checkpoint.get('global_step', '?')}; {heldout_bits} at its last validation; "
            f"uniform {bits} bits)")


def generate_clips(argv: list[str]) -> dict:
    """Sample --n clips in batches, write them in ascending likelihood with samples.tsv and a spectrogram sheet."""
    from seqmamba.data.audio_io import SAMPLE_RATE, load_audio, write_wav
    from seqmamba.data.quantize import decode, encode, start_token
    from seqmamba.generate import generate
    from seqmamba.spectrograms import spectrogram_sheet

    args = generate_parser().parse_args(argv)
    check_generate_args(args)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    model, quantization, bits, origin = load_unet(args.ckpt, device)
    print(f"sampling from {origin}")
    length = round(args.seconds * SAMPLE_RATE)
    prompt = [start_token(bits)]
    if args.prompt is not None:
        prompt += encode(load_audio(args.prompt, SAMPLE_RATE), quantization, bits).tolist()
        if len(prompt) - 1 >= length:
            raise InputError(args.prompt, f"is {(len(prompt) - 1) / SAMPLE_RATE:.2f} s long, not shorter than "
                                          f"--seconds {args.seconds}; give a longer --seconds or a shorter prompt")
    n_new = length - (len(prompt) - 1)
    started = time.perf_counter()
    codes, likelihoods = [], []
    for first in range(0, args.n, args.batch_size):
        batch = min(args.batch_size, args.n - first)
        prompt_ids = torch.tensor(prompt, device=device).expand(batch, -1)
        out = generate(model, prompt_ids, n_new, args.temperature, args.top_p,
                       cuda_graphs=False if args.no_cuda_graphs else None, seed=args.seed + first, progress=True)
        codes.append(torch.cat([prompt_ids[:, 1:], out.tokens], 1).cpu())
        likelihoods.append(out.log_likelihood.cpu())
    seconds = time.perf_counter() - started
    codes, likelihoods = torch.cat(codes), torch.cat(likelihoods)
    order = likelihoods.argsort()
    args.out.mkdir(parents=True, exist_ok=True)
    waves, titles, lines = [], [], ["file\tlog_likelihood"]
    for rank, i in enumerate(order.tolist()):
        wave = np.asarray(decode(codes[i], quantization, bits), dtype=np.float32)
        name = f"sample_{rank:0{len(str(args.n - 1))}d}.wav"
        write_wav(args.out / name, wave, SAMPLE_RATE)
        waves.append(wave)
        titles.append(f"{name}, {likelihoods[i].item():.0f} nats")
        lines.append(f"{name}\t{likelihoods[i].item():.4f}")
    (args.out / "samples.tsv").write_text("\n".join(lines) + "\n")
    spectrogram_sheet({"generated (most likely)": waves[::-1][:16]}, args.out / "spectrograms.png",
                      titles={"generated (most likely)": titles[::-1][:16]})
    bits_per_sample = -likelihoods.mean().item() / (n_new * math.log(2))
    print(f"{args.n} clips of {args.seconds:g} s in {seconds:.1f} s ({args.n / seconds:.2f} clips/s) on {device}; "
          f"mean NLL {bits_per_sample:.4f} bits per generated sample; {args.out}/ (samples.tsv, spectrograms.png)")
    return {"clips": args.n, "seconds": seconds, "bits_per_sample": bits_per_sample}


def main(argv: list[str]) -> dict:
    """Dispatch `audio train` and `audio generate`."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return {}
    action, rest = argv[0], argv[1:]
    if action == "train":
        return train(rest)
    if action == "generate":
        return generate_clips(rest)
    raise InputError(action, "unknown audio action; use `seqmamba audio train` or `seqmamba audio generate`")
