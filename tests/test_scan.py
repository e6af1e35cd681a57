"""The portable selective scan equals a plain sequential scan: real and complex A, all options, gradients.

Its forward without gradients runs numba's compiled kernel on the CPU ('portable' and 'auto' backends)
and plain PyTorch under the 'pytorch' backend; both are checked.
"""

import threading

import pytest
import torch

from seqmamba import ops
from seqmamba.ops.portable_scan import selective_scan_portable, selective_state_update_portable
from sequential_scan import sequential_scan


def make_inputs(complex_a: bool, groups: int | None, batch=2, dim=8, N=4, L=37, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, dim, L, generator=g)
    delta = 0.5 * torch.randn(batch, dim, L, generator=g)
    steps = 2 * L if complex_a else L
    bc_shape = (batch, N, steps) if groups is None else (batch, groups, N, steps)
    B, C = torch.randn(*bc_shape, generator=g), torch.randn(*bc_shape, generator=g)
    if complex_a:
        A = torch.complex(-0.5 - torch.rand(dim, N, generator=g), torch.pi * torch.randn(dim, N, generator=g))
    else:
        A = -torch.rand(dim, N, generator=g) - 0.1
    D, z, bias = torch.randn(dim, generator=g), torch.randn(batch, dim, L, generator=g), torch.randn(dim, generator=g)
    return u, delta, A, B, C, D, z, bias


@pytest.mark.parametrize("backend", ["portable", "pytorch"])
@pytest.mark.parametrize("complex_a", [False, True])
@pytest.mark.parametrize("groups", [None, 2])
@pytest.mark.parametrize("options", [dict(), dict(D=True, z=True, bias=True, softplus=True)])
def test_forward_and_last_state_match_sequential(backend, complex_a, groups, options):
    u, delta, A, B, C, D, z, bias = make_inputs(complex_a, groups)
    kw = dict(D=D if options.get("D") else None, z=z if options.get("z") else None,
              delta_bias=bias if options.get("bias") else None, delta_softplus=bool(options.get("softplus")))
    with ops.force_backend(backend):
        y, last = selective_scan_portable(u, delta, A, B, C, return_last_state=True, **kw)
    y_ref, last_ref = sequential_scan(u, delta, A, B, C, **kw)
    assert last.dtype == (torch.complex64 if complex_a else torch.float32)
    torch.testing.assert_close(y.double(), y_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(last.to(last_ref.dtype), last_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("complex_a", [False, True])
def test_gradients_match_sequential(complex_a):
    inputs = [t.double().requires_grad_() if not t.is_complex() else t.to(torch.complex128).requires_grad_()
              for t in make_inputs(complex_a, None, L=21)]
    u, delta, A, B, C, D, z, bias = inputs
    y = selective_scan_portable(u, delta, A, B, C, D, z, bias, delta_softplus=True)
    y_ref, _ = sequential_scan(u, delta, A, B, C, D, z, bias, delta_softplus=True)
    g = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, inputs, g.to(y.dtype))
    grads_ref = torch.autograd.grad(y_ref, inputs, g)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)  # the scan computes in float32


def test_checkpointed_segments_give_same_values_and_gradients():
    u, delta, A, B, C, D, z, bias = (t.requires_grad_() for t in make_inputs(False, None, L=300))
    whole = selective_scan_portable(u, delta, A, B, C, D, z, bias, True)
    pieces = selective_scan_portable(u, delta, A, B, C, D, z, bias, True, segment_len=64)
    torch.testing.assert_close(pieces, whole)
    g_whole = torch.autograd.grad(whole.sum(), (u, delta, A, B, C))
    g_pieces = torch.autograd.grad(pieces.sum(), (u, delta, A, B, C))
    for a, b in zip(g_pieces, g_whole):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["portable", "pytorch"])
def test_huge_steps_do_not_overflow(backend):
    """A cumsum-of-logs scan would need exp(+sum delta*A) here: ours multiplies decays <= 1 only."""
    u, delta, A, B, C, *_ = make_inputs(False, None, L=200)
    with ops.force_backend(backend):
        y = selective_scan_portable(u, delta.abs() * 1e3, A * 10, B, C)
    y_ref, _ = sequential_scan(u, delta.abs() * 1e3, A * 10, B, C)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.double(), y_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("complex_a", [False, True])
def test_state_update_steps_equal_scan(complex_a):
    u, delta, A, B, C, D, z, bias = make_inputs(complex_a, None, L=15)
    y_scan, last = selective_scan_portable(u, delta, A, B, C, D, z, bias, True, return_last_state=True)
    state = torch.zeros_like(last)
    Bs = torch.complex(B[..., 0::2], B[..., 1::2]) if complex_a else B
    Cs = torch.complex(C[..., 0::2], C[..., 1::2]) if complex_a else C
    ys = [selective_state_update_portable(state, u[..., t], delta[..., t], A, Bs[..., t], Cs[..., t], D, z[..., t],
                                          bias, True) for t in range(u.shape[-1])]
    torch.testing.assert_close(torch.stack(ys, -1), y_scan, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, last, rtol=1e-5, atol=1e-5)


def test_causal_conv_update_matches_full_conv():
    g = torch.Generator().manual_seed(1)
    x, w, b = torch.randn(2, 6, 11, generator=g), torch.randn(6, 4, generator=g), torch.randn(6, generator=g)
    full = ops.causal_conv1d(x, w, b)
    state = torch.zeros(2, 6, 4)
    steps = torch.stack([ops.causal_conv1d_update(x[..., t], state, w, b) for t in range(11)], -1)
    torch.testing.assert_close(steps, full)
    torch.testing.assert_close(ops.causal_conv1d(x[..., :5], w, b), full[..., :5])  # the future is not read


def test_forcing_cuda_without_kernels_fails_loudly():
    if ops.kernels_available() and torch.cuda.is_available():
        pytest.skip("kernels present here")
    with ops.force_backend("cuda"), pytest.raises(RuntimeError, match="forced to 'cuda'"):
        ops.selective_scan(*make_inputs(False, None)[:5])


needs_numba = pytest.mark.skipif(ops.backend.NUMBA_SCAN is None, reason="numba is not installed")


@needs_numba
def test_forward_without_grad_runs_numba_and_with_grad_pytorch(monkeypatch):
    import seqmamba.ops.portable_scan as portable_scan

    calls = []
    monkeypatch.setattr(portable_scan, "NUMBA_SCAN", lambda *args: calls.append(1) or ops.backend.NUMBA_SCAN(*args))
    u, delta, A, B, C, D, z, bias = make_inputs(False, None)
    with torch.no_grad():
        selective_scan_portable(u, delta, A, B, C, D, z, bias, True)
    assert len(calls) == 1
    with ops.force_backend("pytorch"), torch.no_grad():
        selective_scan_portable(u, delta, A, B, C, D, z, bias, True)
    selective_scan_portable(u.requires_grad_(), delta, A, B, C, D, z, bias, True).sum().backward()
    assert len(calls) == 1 and u.grad is not None


@needs_numba
@pytest.mark.parametrize("seed", range(6))
def test_numba_equals_pytorch_on_random_shapes(seed):
    """Odd lengths (1 included), groups, complex A, bfloat16 inputs: the two forwards agree."""
    g = torch.Generator().manual_seed(seed)
    pick = lambda *options: options[torch.randint(len(options), (1,), generator=g).item()]  # noqa: E731
    groups, complex_a = pick(None, 1, 2), bool(seed % 2)
    dim, L = 4 * pick(1, 2, 3), pick(1, 2, 7, 33, 130)
    inputs = make_inputs(complex_a, groups, batch=pick(1, 3), dim=dim, N=pick(1, 4, 16), L=L, seed=seed)
    dtype = pick(torch.float32, torch.bfloat16)
    u, delta, A, B, C, D, z, bias = (t.to(dtype) if t.dim() == 3 or t.dim() == 4 else t for t in inputs)
    results = {}
    for backend in ("portable", "pytorch"):
        with ops.force_backend(backend):
            results[backend] = selective_scan_portable(u, delta, A, B, C, D, z, bias, True, return_last_state=True)
    (y, last), (y_ref, last_ref) = results["portable"], results["pytorch"]
    assert y.dtype == dtype and last.dtype == last_ref.dtype
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(last, last_ref, rtol=1e-4, atol=1e-4)


@needs_numba
def test_numba_scan_from_several_threads():
    """Concurrent callers (a web server's threads) each get what a lone caller gets, to the bit."""
    cases = [make_inputs(complex_a, None, L=64, seed=seed) for seed, complex_a in enumerate([False, True] * 2)]
    expected = [selective_scan_portable(*x[:5]) for x in cases]
    results = [None] * len(cases)

    def scan(i: int) -> None:
        results[i] = [selective_scan_portable(*cases[i][:5]) for _ in range(5)]

    threads = [threading.Thread(target=scan, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, want in zip(results, expected):
        for y in got:
            assert torch.equal(y, want)


@needs_numba
@pytest.mark.parametrize("seed", range(4))
def test_numba_backward_equals_pytorch_autograd(seed):
    """Training on the CPU runs the compiled backward: every input's gradient is PyTorch autograd's."""
    complex_a, groups = bool(seed % 2), (None, 2)[seed // 2]
    inputs = make_inputs(complex_a, groups, batch=2, dim=8, N=4, L=(1, 37, 130, 64)[seed], seed=seed)
    grads = {}
    for backend in ("portable", "pytorch"):
        leaves = [t.detach().clone().requires_grad_() for t in inputs]
        with ops.force_backend(backend):
            y = selective_scan_portable(*leaves, True)
        (y * torch.linspace(-1, 1, y.shape[-1])).sum().backward()
        grads[backend] = [t.grad for t in leaves]
    for name, grad, reference in zip(("u", "delta", "A", "B", "C", "D", "z", "bias"), *grads.values()):
        torch.testing.assert_close(grad, reference, rtol=1e-4, atol=1e-4, msg=f"d{name}")


@needs_numba
@pytest.mark.parametrize("complex_a", [False, True])
def test_cpu_training_saves_no_state_per_step(complex_a):
    """Memory linear in L: no saved tensor is as large as the (B, D, L, N) states."""
    u, delta, A, B, C = (t.requires_grad_() for t in make_inputs(complex_a, None, batch=1, dim=8, N=4, L=256)[:5])
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        y = selective_scan_portable(u, delta, A, B, C)
    y.sum().backward()
    assert sizes and max(sizes) < 8 * 256 * 4 and u.grad is not None and A.grad is not None
