"""Torch-tier behaviour beyond the property suite: dtypes, shapes, modules, torch.compile, doctests."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

import kdref
from kdref import losses as L
from kdref import reference as R

FUNCTIONS = ("kd_loss", "soft_cross_entropy", "hinton_loss", "tckd", "nckd", "dkd_loss")
WITH_TARGET = ("hinton_loss", "tckd", "nckd", "dkd_loss")


def _args(fn: str, s: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return (s, t, y) if fn in WITH_TARGET else (s, t)


def _inputs(shape=(6, 7), dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = (torch.randn(shape, generator=g) * 2).to(dtype)
    t = (torch.randn(shape, generator=g) * 2).to(dtype)
    y = torch.randint(0, shape[-1], shape[:-1], generator=g)
    return s, t, y


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(
    ("dtype", "out_dtype"),
    [
        (torch.float64, torch.float64),
        (torch.float32, torch.float32),
        (torch.bfloat16, torch.float32),
        (torch.float16, torch.float32),
    ],
)
def test_output_dtype_and_gradient_dtype(fn: str, dtype: torch.dtype, out_dtype: torch.dtype) -> None:
    """Half inputs compute and return float32; the gradient comes back in the student's own dtype."""
    s, t, y = _inputs(dtype=dtype)
    s.requires_grad_()
    out = getattr(L, fn)(*_args(fn, s, t, y))
    assert out.dtype == out_dtype and out.shape == ()
    out.backward()
    assert s.grad is not None and s.grad.dtype == dtype


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_mixed_float_dtypes_promote(fn: str) -> None:
    """A bfloat16 student with a float32 teacher (autocast training) computes in float32."""
    s, t, y = _inputs()
    out = getattr(L, fn)(*_args(fn, s.to(torch.bfloat16), t, y))
    ref = getattr(L, fn)(*_args(fn, s.to(torch.bfloat16).float(), t, y))
    assert out.dtype == torch.float32 and torch.equal(out, ref)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_leading_dimensions(fn: str) -> None:
    """(..., C) logits: "none" keeps the leading shape, "mean" averages over every sample, equal to flattening."""
    s, t, y = _inputs(shape=(2, 3, 5), dtype=torch.float64)
    none = getattr(L, fn)(*_args(fn, s, t, y), reduction="none")
    assert none.shape == (2, 3)
    flat = getattr(L, fn)(*_args(fn, s.reshape(6, 5), t.reshape(6, 5), y.reshape(6)), reduction="none")
    torch.testing.assert_close(none.reshape(6), flat, rtol=0, atol=0)
    mean = getattr(L, fn)(*_args(fn, s, t, y))
    torch.testing.assert_close(mean, none.mean())
    ref = getattr(R, fn)(*(a.numpy() for a in _args(fn, s, t, y)), reduction="none")
    np.testing.assert_allclose(none.numpy(), ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_torch_compile_fullgraph(fn: str) -> None:
    """Each loss traces into one graph (fullgraph=True: no graph breaks) and gives the eager values and gradients."""
    torch._dynamo.reset()
    f = getattr(L, fn)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    s, t, y = _inputs(dtype=torch.float64)
    s1, s2 = s.clone().requires_grad_(), s.clone().requires_grad_()
    eager, comp = f(*_args(fn, s1, t, y), temperature=2.0), compiled(*_args(fn, s2, t, y), temperature=2.0)
    eager.backward()
    comp.backward()
    torch.testing.assert_close(comp, eager)
    torch.testing.assert_close(s2.grad, s1.grad)


def test_teacher_that_requires_grad_is_accepted_and_untouched() -> None:
    s, t, y = _inputs(dtype=torch.float64)
    s.requires_grad_()
    t.requires_grad_()
    for fn in FUNCTIONS:
        getattr(L, fn)(*_args(fn, s, t, y)).backward()
    assert t.grad is None and s.grad is not None


@pytest.mark.parametrize(
    ("module", "fn", "kw"),
    [
        (L.KDLoss(temperature=2.0), "kd_loss", {"temperature": 2.0}),
        (
            L.SoftCrossEntropyLoss(temperature=3.0, reduction="sum"),
            "soft_cross_entropy",
            {"temperature": 3.0, "reduction": "sum"},
        ),
        (L.HintonLoss(temperature=2.0, lam=0.3), "hinton_loss", {"temperature": 2.0, "lam": 0.3}),
        (L.TCKDLoss(reduction="none"), "tckd", {"reduction": "none"}),
        (L.NCKDLoss(temperature=1.0), "nckd", {"temperature": 1.0}),
        (L.DKDLoss(alpha=0.5, beta=2.0, temperature=1.0), "dkd_loss", {"alpha": 0.5, "beta": 2.0, "temperature": 1.0}),
    ],
)
def test_modules_match_functions(module: torch.nn.Module, fn: str, kw: dict) -> None:
    s, t, y = _inputs(dtype=torch.float64)
    torch.testing.assert_close(module(*_args(fn, s, t, y)), getattr(L, fn)(*_args(fn, s, t, y), **kw), rtol=0, atol=0)
    assert repr(module).startswith(type(module).__name__)


def test_modules_check_their_keywords_at_construction() -> None:
    with pytest.raises(ValueError, match="`temperature`"):
        L.KDLoss(temperature=0.0)
    with pytest.raises(ValueError, match="`reduction`"):
        L.DKDLoss(reduction="batchmean")
    with pytest.raises(ValueError, match="`lam`"):
        L.HintonLoss(lam=2.0)


def test_top_level_exports() -> None:
    for name in (*FUNCTIONS, "dkd_warmup_factor", "KDLoss", "DKDLoss", "set_value_checks"):
        assert getattr(kdref, name) is getattr(L, name)
    assert kdref.__version__.count(".") == 2


def test_doctests() -> None:
    """Docstring examples run."""
    for module in (L.hinton, L.dkd, L.modules):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__


def test_method_modules_match_functions() -> None:
    s, t, y = _inputs(dtype=torch.float64)
    c = s.flip(-1)
    cases = [
        (L.DISTLoss(tau=4.0, eps_mode="product_add"), L.dist_loss(s, t, tau=4.0, eps_mode="product_add"), (s, t)),
        (L.DeiTSoftLoss(alpha=0.3), L.deit_soft_loss(s, t, y, alpha=0.3), (s, t, y)),
        (L.DeiTHardLoss(), L.deit_hard_loss(s, t, y), (s, t, y)),
        (L.DeiTLoss(distillation="soft", tau=2.0), L.deit_loss(c, s, t, y, distillation="soft", tau=2.0), (c, s, t, y)),
        (L.FunMatchLoss(temperature=2.0), L.funmatch_loss(s, t, temperature=2.0), (s, t)),
        (L.SimKDLoss(), L.simkd_loss(s, t), (s, t)),
    ]
    for module, expected, args in cases:
        torch.testing.assert_close(module(*args), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="`eps_mode`"):
        L.DISTLoss(eps_mode="clamp")
    with pytest.raises(ValueError, match="`distillation`"):
        L.DeiTLoss(distillation="medium")
