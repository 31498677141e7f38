"""The fused autograd Functions (kdref.losses._fused) against the plain-op reference path: values, gradients,
dtypes, grad_output ≠ 1, gradcheck, double backward, and what they save for backward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdref import losses as L
from kdref import reference as R
from kdref.losses import _fused
from kdref.losses._fused import DISTLoss, DKDRows, KDRows

DTYPES = (torch.float64, torch.float32, torch.bfloat16, torch.float16)
TOL = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (2e-5, 2e-5),
    torch.bfloat16: (2e-5, 2e-5),
    torch.float16: (2e-5, 2e-5),
}

CASES = [  # (name, call, per-row output)
    ("kd_loss", lambda s, t, y: L.kd_loss(s, t, temperature=2.0, reduction="none"), True),
    ("soft_cross_entropy", lambda s, t, y: L.soft_cross_entropy(s, t, reduction="none"), True),
    ("hinton_loss", lambda s, t, y: L.hinton_loss(s, t, y, lam=0.3, reduction="none"), True),
    ("tckd", lambda s, t, y: L.tckd(s, t, y, temperature=1.5, reduction="none"), True),
    ("nckd", lambda s, t, y: L.nckd(s, t, y, reduction="none"), True),
    ("dkd_loss", lambda s, t, y: L.dkd_loss(s, t, y, alpha=0.7, beta=3.0, reduction="none"), True),
    ("dist_loss", lambda s, t, y: L.dist_loss(s, t, tau=2.0), False),
    ("inter_class_relation", lambda s, t, y: L.inter_class_relation(s, t), False),
    ("intra_class_relation", lambda s, t, y: L.intra_class_relation(s, t, tau=3.0), False),
]


def _inputs(shape=(13, 41), dtype=torch.float64, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    s = (torch.randn(shape, generator=g) * scale).to(dtype)
    t = (torch.randn(shape, generator=g) * scale).to(dtype)
    y = torch.randint(0, shape[-1], shape[:-1], generator=g)
    return s, t, y


def _value_and_grad(call, s, t, y, fused: bool, w=None):
    old = _fused.set_fused(fused)
    try:
        x = s.clone().requires_grad_()
        out = call(x, t, y)
        weight = w if (w is not None and out.dim() > 0) else torch.tensor(1.7, dtype=out.dtype)
        (out * weight).sum().backward()
        return out.detach(), x.grad
    finally:
        _fused.set_fused(old)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "call", "rows"), CASES, ids=[c[0] for c in CASES])
def test_fused_matches_plain_path(name, call, rows, dtype) -> None:
    """Same values (float32/64, never the input's half dtype) and gradients (in the input dtype), grad_output ≠ 1."""
    s, t, y = _inputs(dtype=dtype)
    w = torch.linspace(-1.0, 2.0, s.shape[0], dtype=torch.float64 if dtype == torch.float64 else torch.float32)
    v1, g1 = _value_and_grad(call, s, t, y, True, w)
    v0, g0 = _value_and_grad(call, s, t, y, False, w)
    assert v1.dtype == v0.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert g1.dtype == g0.dtype == dtype
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(v1, v0, atol=atol, rtol=rtol)
    if dtype in (torch.float64, torch.float32):
        torch.testing.assert_close(g1, g0, atol=atol, rtol=rtol)
    else:  # both round a float32 gradient to the half dtype: at most one unit of roundoff apart
        torch.testing.assert_close(g1.float(), g0.float(), atol=1e-6, rtol=1e-2)


def test_gradcheck_float64() -> None:
    s, t, y = _inputs(shape=(5, 7))
    x = s.clone().requires_grad_()
    for kl in (True, False):
        assert torch.autograd.gradcheck(lambda a, kl=kl: KDRows.apply(a, t, 2.5, kl), (x,))
    for a_, b_ in ((1.0, 8.0), (1.0, 0.0), (0.0, 1.0)):
        assert torch.autograd.gradcheck(lambda a, a_=a_, b_=b_: DKDRows.apply(a, t, y, 4.0, a_, b_), (x,))
    for b_, g_ in ((2.0, 2.0), (1.0, None), (None, 1.0)):
        assert torch.autograd.gradcheck(lambda a, b_=b_, g_=g_: DISTLoss.apply(a, t, 1.5, b_, g_), (x,))


def test_double_backward_raises_clearly() -> None:
    s, t, y = _inputs()
    x = s.clone().requires_grad_()
    for loss in (L.kd_loss(x, t), L.dkd_loss(x, t, y), L.dist_loss(x, t)):
        with pytest.raises(RuntimeError, match="cannot be differentiated twice"):
            torch.autograd.grad(loss, x, create_graph=True)
        torch.autograd.grad(loss, x)  # a first derivative is fine
    # The plain path supports it.
    old = _fused.set_fused(False)
    try:
        (g,) = torch.autograd.grad(L.dkd_loss(x, t, y), x, create_graph=True)
        g.sum().backward()
    finally:
        _fused.set_fused(old)


def _saved(call, s, t, y):
    saved = []

    def pack(v):
        saved.append((tuple(v.shape), v.dtype, v.untyped_storage().data_ptr()))
        return v

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda v: v):
        out = call(s, t, y)
    return out, saved


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16), ids=str)
def test_saved_for_backward_is_one_gradient(dtype) -> None:
    """Each fused loss saves one (M, C) float32 tensor (the gradient) beyond what the cast/scale ops keep."""
    s, t, y = _inputs(shape=(9, 33), dtype=dtype)
    x = s.clone().requires_grad_()
    for name, call, _ in CASES:
        _, saved = _saved(call, x, t, y)
        # The value check (isfinite, an eager composite) keeps a reference to the caller's own student tensor:
        # no extra memory, so storages of the inputs are not counted.
        own = {x.untyped_storage().data_ptr(), t.untyped_storage().data_ptr()}
        big = [v for v in saved if v[0] == (9, 33) and v[2] not in own]
        extra = 1 if name == "hinton_loss" else 0  # F.cross_entropy's hard term saves its own log-softmax
        assert len({v[2] for v in big}) == 1 + extra, (name, saved)
        assert all(v[1] == torch.float32 for v in big), (name, saved)
        with torch.no_grad():
            _, saved = _saved(call, x, t, y)  # no gradient wanted: nothing saved
        assert saved == [], (name, saved)


def test_plain_path_saves_more() -> None:
    s, t, y = _inputs(shape=(9, 33), dtype=torch.float32)
    x = s.clone().requires_grad_()
    old = _fused.set_fused(False)
    try:
        for call in (CASES[5][1], CASES[6][1]):
            _, saved = _saved(call, x, t, y)
            assert len({p for shape, _, p in saved if shape in ((9, 33), (33, 9))}) >= 3
    finally:
        _fused.set_fused(old)


def test_dkd_target_probability_near_one_float32() -> None:
    """p_t → 1 (1 − p_t rounds to 0 in float32): the exact non-target LSE keeps NCKD, TCKD and the gradient right."""
    s = torch.tensor([[0.0, 1.0, 2.0, 3.0], [60.0, 0.5, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    t = torch.tensor([[2000.0, 0.0, 0.0, 0.0], [55.0, 1.0, 0.0, -2.0], [200.0, 3.0, 1.0, 0.0]])
    y = torch.tensor([0, 0, 0])
    x = s.clone().requires_grad_()
    out = L.dkd_loss(x, t, y, temperature=1.0, reduction="none")
    out.sum().backward()
    ref = R.dkd_loss(s.double().numpy(), t.double().numpy(), y.numpy(), temperature=1.0, reduction="none")
    np.testing.assert_allclose(out.detach().double().numpy(), ref, rtol=1e-5, atol=1e-5)
    ref_g = R.dkd_loss_grad(s.double().numpy(), t.double().numpy(), y.numpy(), temperature=1.0, reduction="none")
    np.testing.assert_allclose(x.grad.double().numpy(), ref_g, rtol=1e-4, atol=1e-6)
    assert torch.isfinite(x.grad).all()


def test_dist_uniform_rows_and_columns() -> None:
    """Uniform (zero-variance) student or teacher rows give ρ = 0 and no gradient, exactly as the plain path."""
    s, t, _ = _inputs(shape=(6, 5), dtype=torch.float32)
    s[1] = 0.0
    t[3] = 7.0
    s[:, 2] = -50.0
    t[:, 2] = -60.0
    for fused in (True, False):
        v, g = _value_and_grad(lambda a, b, c: L.dist_loss(a, b), s, t, None, fused)
        if fused:
            v1, g1 = v, g
    torch.testing.assert_close(v1, v)
    torch.testing.assert_close(g1, g, atol=1e-7, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16), ids=str)
def test_fused_cuda_matches_cpu(dtype) -> None:
    """The device-generic Functions give the CPU values and gradients on CUDA."""
    s, t, y = _inputs(shape=(64, 1000), dtype=dtype)
    for _name, call, _ in CASES:
        v0, g0 = _value_and_grad(call, s, t, y, True)
        v1, g1 = _value_and_grad(call, s.cuda(), t.cuda(), y.cuda(), True)
        torch.testing.assert_close(v1.cpu(), v0, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(g1.cpu().float(), g0.float(), atol=1e-5, rtol=1e-2)
