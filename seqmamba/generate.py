"""Sampling with the recurrent state, shared by the DNA LM and the audio U-Net: one decoding loop.

A prompt is read in parallel (prefill), then every new token costs one `step` of the model. Each token's
log-probability under the model's own distribution (temperature 1, no top-p) is summed, so a sample's
exact log-likelihood comes with it. On CUDA the step and the sampling are captured in CUDA graphs, one
per step path (the U-Net's pooling makes a step one of len(pool)+1 computations; the LM has one), and
replayed: no Python or kernel-launch cost per layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from seqmamba.nn.lm import MambaLMHeadModel


class Decoder(Protocol):
    """What `generate` needs of a model: a cache, a parallel prefill, and a step by path."""

    num_step_paths: int

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None, max_len: int = ...) -> Any: ...
    def prefill(self, input_ids: torch.Tensor, cache: Any) -> torch.Tensor: ...
    def step(self, input_ids: torch.Tensor, cache: Any, path: int) -> torch.Tensor: ...
    def step_path(self, t: int) -> int: ...


class LMDecoder:
    """A Mamba LM as a `Decoder`: one step path; logits cut to the real vocabulary (no padding ids sampled)."""

    num_step_paths = 1

    def __init__(self, model: MambaLMHeadModel) -> None:
        self.model = model
        self.vocab_size = model.config.vocab_size

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None, max_len: int = 0) -> list:
        return self.model.allocate_cache(batch_size, dtype)

    def prefill(self, input_ids: torch.Tensor, cache: list) -> torch.Tensor:
        return self.model(input_ids, cache)[:, -1, : self.vocab_size]

    def step(self, input_ids: torch.Tensor, cache: list, path: int) -> torch.Tensor:
        return self.model.step(input_ids, cache)[:, : self.vocab_size]

    def step_path(self, t: int) -> int:
        return 0


def as_decoder(model: torch.nn.Module) -> Decoder:
    """The model itself where it decodes natively (the U-Net), the LM through `LMDecoder`."""
    return LMDecoder(model) if isinstance(model, MambaLMHeadModel) else model


@dataclasses.dataclass
class Generated:
    """Sampled tokens (B, N) and each sequence's log-likelihood of them in nats (B,), float64."""

    tokens: torch.Tensor
    log_likelihood: torch.Tensor


def sample_next(logits: torch.Tensor, temperature: float = 1.0,
                top_p: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (B, V) -> token (B,), and its log-probability under the untempered, untruncated distribution.

    Sampling is an exponential race (argmax p / E, E ~ Exp(1)): no host sync, capturable in a CUDA graph.
    Temperature 0 is greedy.
    """
    log_probs = logits.float().log_softmax(-1)
    if temperature == 0:
        token = log_probs.argmax(-1)
    else:
        probs = (log_probs / temperature).softmax(-1)
        if top_p < 1:  # keep the most likely tokens whose mass first reaches top_p
            sorted_probs, order = probs.sort(-1, descending=True)
            outside = sorted_probs.cumsum(-1) - sorted_probs > top_p
            probs = probs.scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
        token = (probs / torch.empty_like(probs).exponential_()).argmax(-1)
    return token, log_probs.gather(-1, token.unsqueeze(-1)).squeeze(-1)


def zero_state(state: Any) -> None:
    """Zero every tensor of a cache (tensors, lists, tuples, dataclasses of them) in place."""
    if isinstance(state, torch.Tensor):
        state.zero_()
    elif dataclasses.is_dataclass(state):
        for f in dataclasses.fields(state):
            zero_state(getattr(state, f.name))
    elif isinstance(state, (list, tuple)):
        for part in state:
            zero_state(part)


ModelStep = Callable[[torch.Tensor, Any, int], torch.Tensor]  # (tokens, cache, path) -> logits
StepFn = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]  # (token, path) -> next token, log-prob


def eager_step(model_step: ModelStep, cache: Any, temperature: float, top_p: float) -> StepFn:
    """One step and one sample, op by op."""
    return lambda token, path: sample_next(model_step(token, cache, path), temperature, top_p)


def graphed_step(model_step: ModelStep, num_paths: int, cache: Any, batch_size: int, device: torch.device,
                 temperature: float, top_p: float, warmup: int = 2) -> StepFn:
    """Capture step + sample once per path into CUDA graphs over static input and output buffers.

    Capturing runs steps that write into the cache; it is zeroed afterwards, so capture before prefill.
    """
    token_in = torch.zeros(batch_size, dtype=torch.long, device=device)
    run = lambda path: sample_next(model_step(token_in, cache, path), temperature, top_p)  # noqa: E731
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for path in range(num_paths):
            for _ in range(warmup):  # Triton autotuning and lazy initialisation happen outside the capture
                run(path)
    torch.cuda.current_stream(device).wait_stream(side)
    pool, graphs, outputs = torch.cuda.graph_pool_handle(), [], []
    for path in range(num_paths):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            outputs.append(run(path))
        graphs.append(graph)
    zero_state(cache)

    def replay(token: torch.Tensor, path: int) -> tuple[torch.Tensor, torch.Tensor]:
        token_in.copy_(token)
        graphs[path].replay()
        return outputs[path]

    return replay


@torch.no_grad()
def generate(model: torch.nn.Module, prompt_ids: torch.Tensor, n_new: int, temperature: float = 1.0,
             top_p: float = 1.0, cuda_graphs: bool | None = None, seed: int | None = None,
             cache_dtype: torch.dtype | None = None, progress: bool = False, compile_step: bool = False) -> Generated:
    """Continue each prompt (B, K >= 1) by n_new sampled tokens; graphs default to on where the model is on CUDA.

    compile_step: fuse the step's small elementwise ops with torch.compile (one compilation per path, cached
    across calls) before the graphs are captured.
    """
    decoder = as_decoder(model)
    batch, prompt_len = prompt_ids.shape
    device = prompt_ids.device
    if seed is not None:
        torch.manual_seed(seed)
    cuda_graphs = device.type == "cuda" if cuda_graphs is None else cuda_graphs
    cache = decoder.allocate_cache(batch, cache_dtype, max_len=prompt_len + n_new)
    model_step = torch.compile(decoder.step, dynamic=False) if compile_step else decoder.step
    step = (graphed_step(model_step, decoder.num_step_paths, cache, batch, device, temperature, top_p) if cuda_graphs
            else eager_step(model_step, cache, temperature, top_p))
    tokens = torch.empty(batch, n_new, dtype=torch.long, device=device)
    log_likelihood = torch.zeros(batch, dtype=torch.float64, device=device)
    token, log_prob = sample_next(decoder.prefill(prompt_ids, cache), temperature, top_p)
    for i in tqdm(range(n_new), disable=not progress, unit="tok", mininterval=1.0):
        if i:
            token, log_prob = step(token, decoder.step_path(prompt_len + i - 1))
        tokens[:, i] = token
        log_likelihood += log_prob
    return Generated(tokens, log_likelihood)
