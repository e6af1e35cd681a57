"""A deliberately plain selective scan: one Python step per time step, no chunks, no tricks.

The portable scan and the CUDA kernel are both checked against it.
"""

import torch
import torch.nn.functional as F


def sequential_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Returns (y, last_state) with mamba-ssm's shapes and complex conventions."""
    u, delta = u.double(), delta.double()
    A = A.to(torch.complex128 if A.is_complex() else torch.float64)
    if delta_bias is not None:
        delta = delta + delta_bias.double()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)

    def expand(m):  # (b, N, L) or (b, G, N, L) -> (b, D, N, L), complex if A is
        m = m.double()
        if m.dim() == 3:
            m = m.unsqueeze(1)
        if A.is_complex():
            m = torch.complex(m[..., 0::2], m[..., 1::2])
        return m.repeat_interleave(u.shape[1] // m.shape[1], dim=1)

    B, C = expand(B), expand(C)
    h = torch.zeros(u.shape[0], u.shape[1], A.shape[1], dtype=A.dtype)
    ys = []
    for t in range(u.shape[2]):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[..., t]
        y = (h * C[..., t]).sum(-1)
        ys.append(2 * y.real if y.is_complex() else y)
    y = torch.stack(ys, -1)
    if D is not None:
        y = y + u * D.double()[:, None]
    if z is not None:
        y = y * F.silu(z.double())
    return y, h
