"""S4D: a linear time-invariant diagonal SSM (Gu et al. 2022), the paper's non-selective ablation layer.

Training convolves with the SSM's kernel by FFT (O(L log L)); sampling runs the same SSM as a
recurrence on a complex state, one step per token. Layout and init follow state-spaces/s4's s4d.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

S4DCache = tuple[torch.Tensor]  # (state (B, H, N/2) complex64,)


class S4D(nn.Module):
    """(B, L, H) -> (B, L, H): y = GLU(Linear(GELU(K * u + D u))), K the ZOH-discretised S4D-Lin kernel."""

    def __init__(self, d_model: int, d_state: int = 64, dt_min: float = 0.001, dt_max: float = 0.1) -> None:
        super().__init__()
        H, half = d_model, d_state // 2
        self.d_model = d_model
        log_dt = torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)  # (H,)
        self.C = nn.Parameter(torch.view_as_real(torch.randn(H, half, dtype=torch.cfloat)))  # (H, N/2, 2)
        self.log_A_real = nn.Parameter(torch.full((H, half), math.log(0.5)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(half, dtype=torch.float32).repeat(H, 1))
        for p in (self.log_dt, self.log_A_real, self.A_imag):
            p._no_weight_decay = True
        self.D = nn.Parameter(torch.randn(H))
        self.output_linear = nn.Linear(H, 2 * H)

    def _discrete(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(dt A, C (exp(dt A) - 1) / A), both (H, N/2) complex: the ZOH log-transition and output map."""
        A = torch.complex(-torch.exp(self.log_A_real.float()), self.A_imag.float())
        dtA = A * torch.exp(self.log_dt.float()).unsqueeze(-1)
        return dtA, torch.view_as_complex(self.C.float().contiguous()) * torch.expm1(dtA) / A

    def _powers(self, dtA: torch.Tensor, exponents: torch.Tensor) -> torch.Tensor:
        """exp(dt A)^l for each exponent l: (H, N/2, len(exponents))."""
        return torch.exp(dtA.unsqueeze(-1) * exponents.to(dtA.device))

    def kernel(self, length: int) -> torch.Tensor:
        """The convolution kernel K (H, L): K_l = 2 Re(C' exp(dt A)^l)."""
        dtA, C = self._discrete()
        return 2 * torch.einsum("hn,hnl->hl", C, self._powers(dtA, torch.arange(length))).real

    def _epilogue(self, y: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Skip D u, GELU, then the gated output map, in the input's dtype."""
        y = F.gelu(y + u.float() * self.D.float())
        return F.glu(self.output_linear(y.to(u.dtype)), dim=-1)

    def forward(self, u: torch.Tensor, cache: S4DCache | None = None) -> torch.Tensor:
        """(B, L, H) -> (B, L, H); with a cache, also leaves the state after the last input in it."""
        length = u.shape[1]
        x = u.float().transpose(1, 2)  # (B, H, L)
        k_f = torch.fft.rfft(self.kernel(length), n=2 * length)
        y = torch.fft.irfft(torch.fft.rfft(x, n=2 * length) * k_f, n=2 * length)[..., :length]  # (B, H, L)
        if cache is not None:
            weights = self._powers(self._discrete()[0], torch.arange(length - 1, -1, -1))
            cache[0].copy_(torch.einsum("bhl,hnl->bhn", x.to(weights.dtype), weights))  # sum_l A^(L-1-l) u_l
        return self._epilogue(y.transpose(1, 2), u)

    def step(self, u: torch.Tensor, cache: S4DCache) -> torch.Tensor:
        """One token: (B, H) -> (B, H), the state updated in place: h = exp(dt A) h + u, y = 2 Re(C' h)."""
        (state,) = cache
        dtA, C = self._discrete()
        state.copy_(torch.exp(dtA) * state + u.float().unsqueeze(-1))
        return self._epilogue(2 * (state * C).sum(-1).real, u)

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> S4DCache:
        """Zeroed complex state (B, H, N/2)."""
        return (torch.zeros(batch_size, self.d_model, self.C.shape[1], dtype=torch.complex64,
                            device=self.C.device),)
