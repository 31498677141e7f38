"""DIST: bad input in both tiers, torch.compile without graph breaks, dtypes, and the degenerate values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kdref.losses as L
import kdref.reference as R

FUNCS = ("inter_class_relation", "intra_class_relation", "dist_loss")


def _tier(kind: str):
    return R if kind == "numpy" else L


def _arr(kind: str, x):
    return np.asarray(x, dtype=np.float64) if kind == "numpy" else torch.as_tensor(np.asarray(x, dtype=np.float64))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("fn", FUNCS)
def test_bad_input_names_function_and_argument(kind: str, fn: str) -> None:
    """Every bad argument is rejected with an error naming the function and the argument."""
    f = getattr(_tier(kind), fn)
    s, t = _arr(kind, np.zeros((3, 4))), _arr(kind, np.ones((3, 4)))
    with pytest.raises(ValueError, match=rf"{fn}: `teacher_logits` has shape"):
        f(s, _arr(kind, np.ones((3, 5))))
    with pytest.raises(ValueError, match=rf"{fn}: `tau` must be > 0"):
        f(s, t, tau=0.0)
    with pytest.raises(ValueError, match=rf"{fn}: `tau` must be finite"):
        f(s, t, tau=float("inf"))
    with pytest.raises(ValueError, match=rf"{fn}: `eps_mode` must be one of"):
        f(s, t, eps_mode="none")
    with pytest.raises(ValueError, match=rf"{fn}: `eps` must be > 0"):
        f(s, t, eps=0.0)
    with pytest.raises(ValueError, match=rf"{fn}: `student_logits` must be finite"):
        f(_arr(kind, [[0.0, np.nan, 1.0, 2.0]] * 3), t)
    with pytest.raises(ValueError, match=rf"{fn}: `teacher_logits` must be finite"):
        f(s, _arr(kind, [[0.0, -np.inf, 1.0, 2.0]] * 3))
    with pytest.raises(ValueError, match=rf"{fn}: `student_logits` must have at least 2 classes"):
        f(_arr(kind, np.zeros((3, 1))), _arr(kind, np.zeros((3, 1))))
    with pytest.raises(TypeError, match=rf"{fn}: `student_logits` must be a"):
        f(_arr(kind, np.zeros((3, 4))).astype(np.int64) if kind == "numpy" else torch.zeros(3, 4, dtype=torch.long), t)
    if fn != "inter_class_relation":
        with pytest.raises(ValueError, match=rf"{fn}: `student_logits` must have shape \(N, C\) exactly"):
            f(_arr(kind, np.zeros((2, 3, 4))), _arr(kind, np.zeros((2, 3, 4))))
    else:  # (..., C) rows are flattened: the same as (N, C)
        a = f(_arr(kind, np.arange(24.0).reshape(2, 3, 4) % 5), _arr(kind, np.arange(24.0).reshape(2, 3, 4) % 3))
        b = f(_arr(kind, np.arange(24.0).reshape(6, 4) % 5), _arr(kind, np.arange(24.0).reshape(6, 4) % 3))
        assert float(a) == pytest.approx(float(b), rel=1e-12)
    if fn == "dist_loss":
        with pytest.raises(ValueError, match=r"dist_loss: `beta` must be >= 0"):
            f(s, t, beta=-1.0)
        with pytest.raises(TypeError, match=r"dist_loss: `gamma` must be a real number"):
            f(s, t, gamma="2")


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_pearson_bad_input(kind: str) -> None:
    """pearson rejects mismatched shapes, bad dims, empty arrays, integer dtypes and unknown ε modes."""
    f = _tier(kind).pearson
    x = _arr(kind, np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"pearson: `y` has shape"):
        f(x, _arr(kind, np.ones((3, 2))))
    with pytest.raises(ValueError, match=r"pearson: `dim` must lie in \[-2, 1\]"):
        f(x, x, dim=2)
    with pytest.raises(TypeError, match=r"pearson: `dim` must be an integer"):
        f(x, x, dim=1.0)
    with pytest.raises(ValueError, match=r"pearson: `x` must hold at least one element"):
        f(_arr(kind, np.zeros((0, 3))), _arr(kind, np.zeros((0, 3))))
    with pytest.raises(ValueError, match=r"pearson: `eps_mode` must be one of"):
        f(x, x, eps_mode="clamp")
    with pytest.raises(ValueError, match=r"pearson: `x` must be finite"):
        f(_arr(kind, [[np.inf, 1.0, 2.0]]), _arr(kind, [[0.0, 1.0, 2.0]]))
    assert np.allclose(np.asarray(f(x, 2 * x + 1, dim=0)), 1.0)


def test_reference_grad_output_shape_is_checked() -> None:
    """A cotangent of the wrong shape is rejected by the reference's gradient functions."""
    s = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"dist_loss_grad: `grad_output` must have the output's shape \(\)"):
        R.dist_loss_grad(s, s, grad_output=np.ones(3))
    with pytest.raises(ValueError, match=r"pearson_grad: `grad_output` must have the output's shape \(3,\)"):
        R.pearson_grad(s, s, grad_output=np.ones(4))


def test_mismatched_devices_are_rejected() -> None:
    """Tensors on different devices are rejected (meta stands in for a second device)."""
    with pytest.raises(ValueError, match=r"dist_loss: `teacher_logits` is on meta"):
        L.dist_loss(torch.zeros(3, 4), torch.zeros(3, 4, device="meta"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_output_dtypes(dtype: torch.dtype) -> None:
    """Half precision is computed and returned in float32; float64 stays float64."""
    s, t = torch.randn(4, 6).to(dtype), torch.randn(4, 6).to(dtype)
    want = torch.float64 if dtype == torch.float64 else torch.float32
    for fn in FUNCS:
        assert getattr(L, fn)(s, t).dtype == want
    assert L.pearson(s, t).dtype == want


def test_degenerate_values_are_defined() -> None:
    """A uniform row or a constant column gives ρ = 0 (d = 1) and gradient 0 in exact mode, never NaN."""
    s = torch.zeros(3, 5, requires_grad=True)
    t = torch.randn(3, 5)
    v = L.inter_class_relation(s, t)
    (g,) = torch.autograd.grad(v, s)
    assert float(v.detach()) == 1.0 and not g.any()
    assert float(R.intra_class_relation(np.zeros((1, 4)), np.ones((1, 4)))) == 1.0
    assert float(L.pearson(torch.ones(4), torch.arange(4.0))) == 0.0


def test_torch_compile_fullgraph() -> None:
    """dist_loss and pearson compile with fullgraph=True (no graph breaks) and match eager values and gradients."""
    s = torch.randn(6, 10, dtype=torch.float64, requires_grad=True)
    t = torch.randn(6, 10, dtype=torch.float64)
    for mode in ("exact", "product_add", "norm_clamp"):
        f = torch.compile(
            lambda a, b, m=mode: L.dist_loss(a, b, tau=2.0, eps_mode=m), fullgraph=True, backend="aot_eager"
        )
        out = f(s, t)
        (g,) = torch.autograd.grad(out, s)
        ref = L.dist_loss(s, t, tau=2.0, eps_mode=mode)
        (g_ref,) = torch.autograd.grad(ref, s)
        torch.testing.assert_close(out, ref)
        torch.testing.assert_close(g, g_ref)
    p = torch.compile(lambda a, b: L.pearson(a, b, dim=0), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(p(s, t), L.pearson(s, t, dim=0))
