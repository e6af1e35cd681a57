"""`seqmamba audio train | generate`: waveform models (a SaShiMi U-Net) trained in a run directory, and sampled.

train takes the run machinery's flags (`--config`, `--model.*`, `--data.*`, `--trainer.*`, `--out`,
`--resume`, ...); summary.json gets parameters and val/test bits per sample.
generate writes DIR/sample_NNN.wav in ascending log-likelihood, DIR/samples.tsv (file, log_likelihood in
nats, exact under the model) and DIR/spectrograms.png, into a new or empty DIR that it holds while it runs (a
second generate into it is refused), each file written to a temporary name and renamed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from seqmamba.devices import resolve_device
from seqmamba.errors import InputError
from seqmamba.limits import check_disk, check_finite, check_memory
from seqmamba.outputs import check_empty_folder, folder_lock, written_atomically

if TYPE_CHECKING:
    from seqmamba.training.model_loading import LoadedModel

CODE_BYTES = 8 + 4  # per generated sample held until writing: its code (int64) and its decoded value (float32)
WAV_BYTES = 2  # per sample written: 16-bit PCM


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
    """Train a waveform model (SaShiMi U-Net of Mamba blocks) on an audio folder, SC09 or YouTubeMix layout."""
    from seqmamba.tasks.audio_data import AudioDataModule
    from seqmamba.tasks.audio_model import AudioModelTask
    from seqmamba.training.runner import run_training

    return run_training("audio train", AudioModelTask, AudioDataModule, argv, finish=report,
                        default_run_dir="runs/audio", check=check_vocabulary)


def check_generate_settings(out: Path, n: int, seconds: float, prompt: Path | None, temperature: float,
                            top_p: float, batch_size: int) -> None:
    """Settings that cannot work, reported before the model is loaded."""
    from seqmamba.data.audio_io import SAMPLE_RATE

    check_finite("--seconds", seconds)
    for name, value, ok, rule in (("--n", n, n >= 1, "at least 1"),
                                  ("--seconds", seconds, round(seconds * SAMPLE_RATE) >= 1, f"at least 1/{SAMPLE_RATE}"),
                                  ("--temperature", temperature, temperature >= 0, "at least 0"),
                                  ("--top_p", top_p, 0 < top_p <= 1, "in (0, 1]"),
                                  ("--batch_size", batch_size, batch_size >= 1, "at least 1")):
        if not ok:
            raise InputError(name, f"must be {rule}, got {value}")
    if prompt is not None and not prompt.is_file():
        raise InputError(prompt, "no such audio file for --prompt")
    check_empty_folder(out, "--out")
    samples = n * round(seconds * SAMPLE_RATE)
    check_memory("--n, --seconds", samples * CODE_BYTES, f"{n} clips of {seconds:g} s")
    check_disk("--n, --seconds", out, samples * WAV_BYTES, f"{n} clips of {seconds:g} s")


def generate(*, ckpt: Path, out: Path, n: int = 64, seconds: float = 1.0, prompt: Path | None = None,
             temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 64, seed: int = 0, device: str = "auto",
             cuda_graphs: bool = True) -> dict:
    """Sample clips from a trained U-Net: WAVs in ascending likelihood, samples.tsv and a spectrogram sheet.

    Args:
        ckpt: checkpoint of `seqmamba audio train`
        out: folder for the WAVs, samples.tsv and spectrograms.png (new or without clips)
        n: clips to generate
        seconds: length of each clip, prompt included
        prompt: audio file every clip continues
        temperature: sampling temperature; 0 = greedy
        top_p: nucleus sampling mass, in (0, 1]
        batch_size: clips sampled at once
        seed: random seed (batch k uses seed + its first clip's index)
        device: auto (the GPU when there is one), cpu, cuda or cuda:N
        cuda_graphs: replay each step as a CUDA graph on GPU (false: step eagerly, for debugging)
    """
    from seqmamba.data.audio_io import SAMPLE_RATE, load_audio
    from seqmamba.data.quantize import encode, start_token
    from seqmamba.training.model_loading import load_model

    out, prompt = Path(out), None if prompt is None else Path(prompt)
    check_generate_settings(out, n, seconds, prompt, temperature, top_p, batch_size)
    device = resolve_device(device)
    loaded = load_model(ckpt, "audio", device)
    model, quantization, bits = loaded.module, loaded.data["quantization"], loaded.data["bits"]
    print(f"sampling from {checkpoint_origin(ckpt, loaded)}")
    length = round(seconds * SAMPLE_RATE)
    prompt_codes = [start_token(bits)]
    if prompt is not None:
        prompt_codes += encode(load_audio(prompt, SAMPLE_RATE), quantization, bits).tolist()
        if len(prompt_codes) - 1 >= length:
            raise InputError(prompt, f"is {(len(prompt_codes) - 1) / SAMPLE_RATE:.2f} s long, not shorter than "
                                     f"--seconds {seconds}; give a longer --seconds or a shorter prompt")
    with folder_lock(out, "--out"):
        check_empty_folder(out, "--out")  # again: another command may have written here meanwhile
        return sample_into(out, model, prompt_codes, length, quantization, bits, device, n=n, temperature=temperature,
                           top_p=top_p, batch_size=batch_size, seed=seed, cuda_graphs=cuda_graphs, ckpt=ckpt)


def checkpoint_origin(path: Path, loaded: LoadedModel) -> str:
    """Which weights a sample comes from: the checkpoint's path, step and held-out bits at its last validation."""
    bits = loaded.data["bits"]
    score = loaded.heldout_loss
    heldout_bits = "no held-out NLL recorded" if score is None else f"held-out {score / math.log(2):.4f} bits per sample"
    step = "?" if loaded.step is None else loaded.step
    return f"{path} (step {step}; {heldout_bits} at its last validation; uniform {bits} bits)"


def sample_into(out: Path, model, prompt_codes: list[int], length: int, quantization: str, bits: int,
                device: torch.device, *, n: int, temperature: float, top_p: float, batch_size: int, seed: int,
                cuda_graphs: bool, ckpt: Path) -> dict:
    """Generate the clips and write them into `out`, each file through a temporary name."""
    from seqmamba.data.audio_io import SAMPLE_RATE, write_wav
    from seqmamba.data.quantize import decode
    from seqmamba.generate import generate as decode_steps
    from seqmamba.spectrograms import spectrogram_sheet

    n_new = length - (len(prompt_codes) - 1)
    started = time.perf_counter()
    codes, likelihoods = [], []
    for first in range(0, n, batch_size):
        prompt_ids = torch.tensor(prompt_codes, device=device).expand(min(batch_size, n - first), -1)
        sampled = decode_steps(model, prompt_ids, n_new, temperature, top_p, cuda_graphs=None if cuda_graphs else False,
                               seed=seed + first, progress=True)
        if not torch.isfinite(sampled.log_likelihood).all():
            raise InputError(ckpt, "the model gives NaN or infinite likelihoods; its weights are broken: use "
                                   "another checkpoint (e.g. best.ckpt) or train again. Nothing was written")
        codes.append(torch.cat([prompt_ids[:, 1:], sampled.tokens], 1).cpu())
        likelihoods.append(sampled.log_likelihood.cpu())
    elapsed = time.perf_counter() - started
    codes, likelihoods = torch.cat(codes), torch.cat(likelihoods)
    order = likelihoods.argsort()
    waves, titles, lines, written = [], [], ["file\tlog_likelihood"], []
    try:  # the folder was empty and is held by this command: on any stop, what this call wrote goes again
        for rank, i in enumerate(order.tolist()):
            wave = np.asarray(decode(codes[i], quantization, bits), dtype=np.float32)
            name = f"sample_{rank:0{len(str(n - 1))}d}.wav"
            written.append(out / name)
            with written_atomically(out / name) as tmp:
                write_wav(tmp, wave, SAMPLE_RATE)
            waves.append(wave)
            titles.append(f"{name}, {likelihoods[i].item():.0f} nats")
            lines.append(f"{name}\t{likelihoods[i].item():.4f}")
        written += [out / "samples.tsv", out / "spectrograms.png"]
        with written_atomically(out / "samples.tsv") as tmp:
            tmp.write_text("\n".join(lines) + "\n")
        with written_atomically(out / "spectrograms.png") as tmp:
            spectrogram_sheet({"generated (most likely)": waves[::-1][:16]}, tmp,
                              titles={"generated (most likely)": titles[::-1][:16]})
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    bits_per_sample = -likelihoods.mean().item() / (n_new * math.log(2))
    print(f"{n} clips of {length / SAMPLE_RATE:g} s in {elapsed:.1f} s ({n / elapsed:.2f} clips/s) on {device}; "
          f"mean NLL {bits_per_sample:.4f} bits per generated sample; {out}/ (samples.tsv, spectrograms.png)")
    return {"clips": n, "seconds": elapsed, "bits_per_sample": bits_per_sample}
