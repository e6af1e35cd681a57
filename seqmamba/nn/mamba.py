"""The Mamba mixer (selective SSM block of Gu & Dao 2023), real and complex-parameterized.

Parameter names and shapes are those of `mamba_ssm.modules.mamba_simple.Mamba`, so a real mixer's
state dict loads into mamba-ssm and back key for key. `forward` runs whole sequences (fused kernels
on GPU); `step` runs one token against a small explicit cache (conv window, SSM state).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from seqmamba import ops

MixerCache = tuple[torch.Tensor, torch.Tensor]  # (conv_state (B, D, W), ssm_state (B, D, N))


class Mamba(nn.Module):
    """Selective state space mixer with real diagonal A (S4D-Real init: A_n = -(n+1))."""

    complex_ssm = False

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        bc_width = 2 * d_state if self.complex_ssm else d_state  # complex B, C: (re, im) per state
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner,
                                padding=d_conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * bc_width, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        self._init_dt(dt_min, dt_max, dt_init_floor)
        self._init_A()
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.D._no_weight_decay = True

    def _init_dt(self, dt_min: float, dt_max: float, floor: float) -> None:
        """dt_proj starts so that softplus(bias) spans [dt_min, dt_max] log-uniformly, as in mamba-ssm."""
        nn.init.uniform_(self.dt_proj.weight, -self.dt_rank**-0.5, self.dt_rank**-0.5)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.dt_proj.bias._no_reinit = True

    def _init_A(self) -> None:
        A = torch.arange(1, self.d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))  # (D, N)
        self.A_log._no_weight_decay = True

    def A(self) -> torch.Tensor:
        """The state matrix's diagonal, (D, N) float32 (complex64 for the complex mixer)."""
        return -torch.exp(self.A_log.float())

    def forward(self, hidden_states: torch.Tensor, cache: MixerCache | None = None,
                carry: bool = False) -> torch.Tensor:
        """(B, L, d_model) -> (B, L, d_model); with a cache, also leaves the final states in it (prefill).

        With `carry`, the sequence continues from the cache's states (a chunk of a longer one), exactly.
        """
        batch, seqlen, _ = hidden_states.shape
        # (2D, B*L) viewed as (B, 2D, L): contiguous along L, the layout the scan kernels read without a copy
        xz = (self.in_proj.weight @ hidden_states.reshape(-1, self.d_model).t()).unflatten(1, (batch, seqlen))
        xz = xz.transpose(0, 1)
        if self.in_proj.bias is not None:
            xz = xz + self.in_proj.bias.to(xz.dtype)[:, None]
        args = (self.conv1d.weight.squeeze(1), self.conv1d.bias, self.x_proj.weight, self.dt_proj.weight,
                self.out_proj.weight, self.out_proj.bias, self.A(), self.D.float(), self.dt_proj.bias.float())
        if cache is None:
            return ops.mamba_inner(xz, *args)
        conv_state, ssm_state = cache
        if carry:
            return ops.mamba_inner(xz, *args, state=cache)
        x = xz[:, : self.d_inner]
        conv_state.copy_(F.pad(x, (self.d_conv - seqlen, 0)))  # last W inputs of the conv, zero-padded
        out, last_state = ops.mamba_inner(xz, *args, return_last_state=True)
        ssm_state.copy_(last_state)
        return out

    def _unpack_bc(self, bc: torch.Tensor) -> torch.Tensor:
        """x_proj's B or C columns for one step -> (B, N), complex for the complex mixer."""
        return bc

    def step(self, hidden_states: torch.Tensor, cache: MixerCache) -> torch.Tensor:
        """One token: (B, d_model) -> (B, d_model), updating the cache in place."""
        conv_state, ssm_state = cache
        x, z = self.in_proj(hidden_states).chunk(2, dim=-1)  # (B, D) each
        x = ops.causal_conv1d_update(x, conv_state, self.conv1d.weight.squeeze(1), self.conv1d.bias, "silu")
        width = (self.x_proj.out_features - self.dt_rank) // 2
        dt, B, C = torch.split(self.x_proj(x), [self.dt_rank, width, width], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight)  # (B, D); bias added inside the update
        y = ops.selective_state_update(ssm_state, x, dt, self.A(), self._unpack_bc(B), self._unpack_bc(C),
                                       self.D.float(), z=z, dt_bias=self.dt_proj.bias.float(), dt_softplus=True)
        return self.out_proj(y)

    def step_weights(self) -> dict[str, torch.Tensor | None]:
        """The parameters as the fused layer step (`ops.fused_layer_step`) reads them, named as its arguments."""
        return dict(in_proj_weight=self.in_proj.weight, in_proj_bias=self.in_proj.bias,
                    conv_weight=self.conv1d.weight.squeeze(1), conv_bias=self.conv1d.bias,
                    x_proj_weight=self.x_proj.weight, dt_proj_weight=self.dt_proj.weight,
                    dt_proj_bias=self.dt_proj.bias, A_log=self.A_log, A_imag=self.A_imag if self.complex_ssm else None,
                    D=self.D, out_proj_weight=self.out_proj.weight, out_proj_bias=self.out_proj.bias)

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> MixerCache:
        """Zeroed conv window and SSM state for `step` (the SSM state is kept in float32 or complex64)."""
        device = self.out_proj.weight.device
        conv_state = torch.zeros(batch_size, self.d_inner, self.d_conv, device=device,
                                 dtype=dtype or self.conv1d.weight.dtype)
        state_dtype = torch.complex64 if self.complex_ssm else torch.float32
        ssm_state = torch.zeros(batch_size, self.d_inner, self.d_state, device=device, dtype=state_dtype)
        return conv_state, ssm_state


class ComplexMamba(Mamba):
    """Mamba with complex diagonal A (S4D-Lin init: A_n = -1/2 + i*pi*n) and complex B, C.

    The paper's audio models use it: oscillating modes suit waveforms. A = -exp(A_log) + i*A_imag;
    x_proj emits (re, im) for every state of B and C, the layout mamba-ssm's complex kernels read.
    """

    complex_ssm = True

    def _init_A(self) -> None:
        self.A_log = nn.Parameter(torch.full((self.d_inner, self.d_state), math.log(0.5)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(self.d_state, dtype=torch.float32).repeat(self.d_inner, 1))
        self.A_log._no_weight_decay = True
        self.A_imag._no_weight_decay = True

    def A(self) -> torch.Tensor:
        return torch.complex(-torch.exp(self.A_log.float()), self.A_imag.float())

    def _unpack_bc(self, bc: torch.Tensor) -> torch.Tensor:
        return ops.pairs_to_complex(bc)
