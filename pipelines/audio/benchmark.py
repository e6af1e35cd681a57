"""Audio on the GPU: U-Net training throughput, the Table 5 direction, sampling speed, a spectrogram sheet.

    python -m pipelines.audio.benchmark --digits DIR --out pipelines/benchmarks/results/audio_h100.json

1. `training`: tokens/s and peak memory of the SC09 6.1M preset (bf16 autocast, batch 16 x 16000).
2. `table5`: each of Mamba/Mamba, complex/complex, S4D+MLP/S4D+MLP and Mamba/S4D+MLP (outer/center) trained
   for the same wall-clock budget on the digits stand-in (warmup 10% then cosine over the budget, the paper's
   AdamW recipe), then validation NLL in bits per sample.
3. `sampling`: 64 one-second clips from the 6.1M preset (complex, and the real-Mamba variant of the same size)
   with CUDA graphs, wall time and clips/s; the eager step timed over a stretch and extrapolated; the DNA LM
   (16 layers, d 64, batch 64) in ms/step through seqmamba.generate eager and graphed, beside mamba-ssm's
   `MambaLMHeadModel.generate` with cg=False and cg=True.
4. `sheet`: 16 clips sampled from the best Table 5 model beside 16 real validation clips (PNG next to --out).
5. `compiled` (GPU, only when asked: `--sections compiled`): the graphed sampling of 3. with torch.compile
   fusing each path's small ops (compilation takes minutes, so it runs as a command of its own).
The JSON is rewritten after every section, so a run cut short keeps what it measured. `--tiny` runs every
section in seconds on CPU (a smoke test of the script, no meaningful numbers).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from pipelines.benchmarks.timing import emit, environment, peak_memory_gib, reset_peak_memory, run_case, synchronize
from seqmamba.data.quantize import decode, start_token
from seqmamba.ops import backend
from seqmamba.generate import generate
from seqmamba.nn import MambaLMConfig, MambaLMHeadModel
from seqmamba.nn.sashimi import Sashimi, SashimiConfig
from seqmamba.spectrograms import spectrogram_sheet
from seqmamba.tasks.audio_data import AudioDataModule
from seqmamba.tasks.optim import decay_groups, warmup_cosine

PRESET = "configs/audio/sc09-mamba-6m.yaml"
TABLE5 = {"mamba/mamba": dict(outer="mamba", center="mamba", d_state=16),
          "complex/complex": dict(outer="complex-mamba", center="complex-mamba", d_state=8),
          "s4d+mlp/s4d+mlp": dict(outer="s4d+mlp", center="s4d+mlp"),
          "mamba/s4d+mlp": dict(outer="mamba", center="s4d+mlp", d_state=16)}
SECTIONS = ("training", "table5", "sampling", "sheet", "compiled")
TINY = dict(d_model=8, n_layers=1, d_state=4, s4d_state=8)


def preset_config(tiny: bool, **overrides) -> SashimiConfig:
    """The 6.1M preset's U-Net (or a tiny one), with block kinds overridden."""
    fields = yaml.safe_load(Path(PRESET).read_text())["model"]["unet"]
    return SashimiConfig(**fields | overrides | (TINY if tiny else {}))


def autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def nll(model: Sashimi, batch: dict, device: torch.device) -> torch.Tensor:
    """Mean next-sample NLL (nats) of a batch, padding ignored."""
    with autocast(device):
        logits = model(batch["input_ids"].to(device))
    return F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].to(device).flatten())


def training_throughput(args, device: torch.device) -> dict:
    """Forward, backward and AdamW step of the 6.1M preset on random codes."""
    reset_peak_memory(device)
    torch.manual_seed(0)
    model = Sashimi(preset_config(args.tiny)).to(device)
    optimizer = torch.optim.AdamW(decay_groups(model, 0.1), lr=0.002, betas=(0.9, 0.95))
    ids = torch.randint(256, (args.batch, args.seq_len + 1), device=device)
    batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}

    def step() -> None:
        loss = nll(model, batch, device)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"parameters": model.num_parameters(), "batch": args.batch, "seq_len": args.seq_len,
            "tokens_per_s": round(args.batch * args.seq_len * args.steps / seconds),
            "step_ms": round(1000 * seconds / args.steps, 2), "peak_gib": peak_memory_gib(device)}


def train_for(config: SashimiConfig, data: AudioDataModule, budget_s: float, device: torch.device) -> tuple:
    """Train for a wall-clock budget (lr: 10% warmup, cosine over the budget); model and steps taken."""
    torch.manual_seed(0)
    model = Sashimi(config).to(device)
    optimizer = torch.optim.AdamW(decay_groups(model, 0.1), lr=0.002, betas=(0.9, 0.95))
    schedule = warmup_cosine(warmup_steps=100, total_steps=1000, min_lr_ratio=0.0)  # in thousandths of the budget
    steps, start = 0, time.perf_counter()
    while True:
        for batch in data.train_dataloader():
            elapsed = time.perf_counter() - start
            if elapsed >= budget_s:
                return model, steps
            for group in optimizer.param_groups:
                group["lr"] = 0.002 * schedule(int(1000 * elapsed / budget_s))
            nll(model, batch, device).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1


@torch.no_grad()
def validation_bits(model: Sashimi, data: AudioDataModule, device: torch.device) -> float:
    """Sample-weighted validation NLL in bits per sample."""
    total, count = 0.0, 0
    for batch in data.val_dataloader():
        n = int((batch["labels"] != -100).sum())
        total += nll(model, batch, device).item() * n
        count += n
    return total / count / math.log(2)


def table5(args, device: torch.device, data: AudioDataModule, keep: dict) -> dict:
    """Each outer/center pairing after the same training time; the best model is kept for the sheet."""
    results = {}
    for name, kinds in TABLE5.items():
        def case() -> dict:
            model, steps = train_for(preset_config(args.tiny, **kinds), data, args.budget_s, device)
            bits = validation_bits(model.eval(), data, device)
            if bits < keep.get("bits", math.inf):
                keep.update(bits=bits, model=model, name=name)
            return {"parameters": model.num_parameters(), "steps": steps, "budget_s": args.budget_s,
                    "val_bits_per_sample": round(bits, 4)}

        results[name] = run_case(case)
        print(f"table5 {name}: {results[name]}", flush=True)
    return results


def time_clips(model: Sashimi, n: int, seconds: float, cuda_graphs: bool, device: torch.device,
               max_steps: int | None = None, compile_step: bool = False) -> dict:
    """Sample n clips (or only the first max_steps samples, extrapolated); wall time includes graph capture."""
    length = round(16000 * seconds)
    steps = min(length, max_steps or length)
    prompt = torch.full((n, 1), start_token(8), device=device)
    synchronize(device)
    start = time.perf_counter()
    generate(model, prompt, steps, cuda_graphs=cuda_graphs, seed=0, compile_step=compile_step)
    synchronize(device)
    wall = time.perf_counter() - start
    result = {"clips": n, "seconds_per_clip": seconds, "samples_timed": steps, "wall_s": round(wall, 3),
              "ms_per_step": round(1000 * wall / steps, 4)}
    if steps < length:
        result["wall_s_extrapolated"] = round(wall * length / steps, 2)
    result["clips_per_s"] = round(n / result.get("wall_s_extrapolated", wall), 3)
    return result


def lm_ms_per_step(args, device: torch.device) -> dict:
    """ms per decoded token of the DNA LM (16 layers, d 64, batch 64): seqmamba eager/graphs, mamba-ssm cg off/on."""
    torch.manual_seed(0)
    config = MambaLMConfig(d_model=16 if args.tiny else 64, n_layer=2 if args.tiny else 16, vocab_size=9)
    ours = MambaLMHeadModel(config).to(device).eval()
    batch, prompt_len, new = (4, 8, 16) if args.tiny else (64, 16, 512)
    prompt = torch.randint(4, 9, (batch, prompt_len), device=device)
    results = {}
    for graphs in ((False, True) if device.type == "cuda" else (False,)):
        def ours_case() -> dict:
            generate(ours, prompt, 8, cuda_graphs=graphs)  # warm caches, autotuning
            synchronize(device)
            start = time.perf_counter()
            generate(ours, prompt, new, cuda_graphs=graphs)
            synchronize(device)
            return {"ms_per_step": round(1000 * (time.perf_counter() - start) / new, 4)}

        results[f"seqmamba_{'graphs' if graphs else 'eager'}"] = run_case(ours_case)
    try:
        from mamba_ssm.models.config_mamba import MambaConfig
        from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel as ReferenceLM
    except ImportError:
        results["mamba_ssm"] = {"error": "mamba_ssm not installed"}
        return results
    reference = ReferenceLM(MambaConfig(d_model=config.d_model, n_layer=config.n_layer, vocab_size=9,
                                        ssm_cfg={"layer": "Mamba1"}, rms_norm=True, residual_in_fp32=True,
                                        fused_add_norm=True), device=device).eval()
    for cg in (False, True):
        def reference_case() -> dict:
            reference.generate(prompt, prompt_len + 8, cg=cg)
            synchronize(device)
            start = time.perf_counter()
            reference.generate(prompt, prompt_len + new, cg=cg, temperature=1.0)
            synchronize(device)
            return {"ms_per_step": round(1000 * (time.perf_counter() - start) / new, 4)}

        results[f"mamba_ssm_cg_{str(cg).lower()}"] = run_case(reference_case)
    return results


def sampling(args, device: torch.device) -> dict:
    """Clips/s of the 6.1M U-Net (complex preset and real variant), eager and graphed; the LM beside mamba-ssm."""
    results = {}
    n, seconds = (4, 0.02) if args.tiny else (args.clips, 1.0)
    for name, kinds in (("complex_6m", {}), ("real_6m", TABLE5["mamba/mamba"])):
        model = Sashimi(preset_config(args.tiny, **kinds)).to(device).eval()
        results[f"{name}_eager"] = run_case(lambda: time_clips(model, n, seconds, False, device, args.eager_steps))
        if device.type == "cuda":
            results[f"{name}_graphs"] = run_case(lambda: time_clips(model, n, seconds, True, device))
        print(f"sampling {name}: {results}", flush=True)
    results["lm"] = lm_ms_per_step(args, device)
    return results


def sampling_compiled(args, device: torch.device) -> dict:
    """As `sampling`, with the step's elementwise ops fused by torch.compile (compiled once per path, untimed)."""
    results = {}
    for name, kinds in (("complex_6m", {}), ("real_6m", TABLE5["mamba/mamba"])):
        model = Sashimi(preset_config(args.tiny, **kinds)).to(device).eval()

        def case() -> dict:
            started = time.perf_counter()
            time_clips(model, args.clips, 0.01, True, device, compile_step=True)  # compiles every path
            return {"compile_s": round(time.perf_counter() - started, 1),
                    **time_clips(model, args.clips, 1.0, True, device, compile_step=True)}

        results[f"{name}_graphs_compiled"] = run_case(case)
        print(f"sampling compiled {name}: {results}", flush=True)
    return results


def sheet(keep: dict, data: AudioDataModule, out_png: Path, device: torch.device, tiny: bool) -> dict:
    """16 clips from the best Table 5 model beside 16 real validation clips."""
    n, length = (4, 320) if tiny else (16, 16000)
    model = keep["model"].eval()
    out = generate(model, torch.full((n, 1), start_token(8), device=device), length, seed=0)
    generated = [decode(codes.cpu(), "mu-law", 8).numpy() for codes in out.tokens]
    silence = start_token(8)  # padding (label -100) shown as silence
    real = [decode(codes, "mu-law", 8).numpy() for batch in data.val_dataloader()
            for codes in torch.where(batch["labels"] < 0, silence, batch["labels"])][:n]
    spectrogram_sheet({f"generated ({keep['name']})": generated, "real (validation)": real}, out_png)
    return {"png": str(out_png), "model": keep["name"], "val_bits_per_sample": round(keep["bits"], 4),
            "generated_bits_per_sample": round(-out.log_likelihood.mean().item() / length / math.log(2), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", required=True, help="SC09-layout folder (seqmamba data make-digits --out DIR)")
    parser.add_argument("--out", required=True, help="JSON report; the spectrogram sheet goes beside it (.png)")
    parser.add_argument("--budget-s", type=float, default=60.0, help="training seconds per Table 5 model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=16000)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--eager-steps", type=int, default=1000, help="eager sampling is timed over this many steps")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS[:4]),
                        help="what to run (sheet needs table5); 'compiled' (GPU) is separate: it takes minutes")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test: tiny models, seconds of work")
    args = parser.parse_args()
    if args.tiny:
        args.budget_s, args.batch, args.seq_len, args.steps, args.eager_steps = 2.0, 2, 256, 2, 100
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = AudioDataModule(args.digits, seq_len=args.seq_len, batch_size=args.batch, val_max_clips=16 if args.tiny
                           else 512, num_workers=0 if args.tiny else 4)
    data.setup("fit")
    fused = getattr(backend.KERNELS, "complex_state_update", None) is not None  # the complex step's Triton kernel
    report, keep = {"environment": environment(device) | {"complex_step_fused": fused}, "settings": vars(args)}, {}
    sections = {"training": lambda: run_case(lambda: training_throughput(args, device)),
                "table5": lambda: table5(args, device, data, keep),
                "sampling": lambda: sampling(args, device),
                "sheet": lambda: run_case(lambda: sheet(keep, data, Path(args.out).with_suffix(".png"), device,
                                                        args.tiny)) if keep else {"error": "needs table5"},
                "compiled": lambda: sampling_compiled(args, device) if device.type == "cuda" else {"error": "GPU only"}}
    for name in SECTIONS:
        if name in args.sections:
            report[name] = sections[name]()
            emit(report, args.out)  # after every section: a run cut short keeps what it measured


if __name__ == "__main__":
    main()
