"""The 50-digit mpmath oracles against closed forms that do not share their code path."""

from __future__ import annotations

from functools import partial
from typing import Any

import mpmath
import numpy as np
import pytest
import sympy as sp

from kdref.symbolic import dkd, hinton
from kdref.symbolic._ops import numerical_gradient, symbols

RTOL = 1e-14  # both sides are 50-digit values rounded once to float64


def _logits(seed: int, shape: tuple[int, ...], scale: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape) * scale


def _targets(seed: int, shape: tuple[int, ...], C: int) -> np.ndarray:
    return np.random.default_rng(seed + 1000).integers(0, C, size=shape)


def _softmax(row: Any, T: float) -> list[Any]:
    """Plain exp / sum softmax (no log-sum-exp), to be called inside mpmath.workdps(60)."""
    e = [mpmath.exp(mpmath.mpf(float(x)) / mpmath.mpf(T)) for x in row]
    s = mpmath.fsum(e)
    return [x / s for x in e]


def _per_row(f: Any, *arrays: np.ndarray) -> np.ndarray:
    """Apply f row by row at 60 digits and round each result (scalar or list) to float64."""
    with mpmath.workdps(60):
        out = []
        for rows in zip(*arrays, strict=True):
            r = f(*rows)
            out.append([float(x) for x in r] if isinstance(r, list) else float(r))
    return np.array(out, dtype=np.float64)


def _close(a: Any, b: Any, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=1e-300)


# --------------------------------------------------------------------------------------------------------
# Loss values
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_kd_binary_bernoulli_closed_form(T: float) -> None:
    """C = 2: KL of two Bernoulli laws with p = sigmoid((v0 - v1)/T), 1 - p = sigmoid((v1 - v0)/T)."""
    s = np.array([[0.5, -1.25], [300.0, -400.0], [-1000.0, 1000.0], [2.0, 2.0], [1e-3, 0.0]])
    t = np.array([[-2.0, 1.0], [-250.0, 100.0], [1000.0, -1000.0], [3.0, -3.0], [0.0, 1e-3]])

    def bern(z: Any, v: Any) -> Any:
        sig = lambda d: 1 / (1 + mpmath.exp(-mpmath.mpf(float(d)) / T))  # noqa: E731
        p, p1, q, q1 = sig(v[0] - v[1]), sig(v[1] - v[0]), sig(z[0] - z[1]), sig(z[1] - z[0])
        return T**2 * (p * mpmath.log(p / q) + p1 * mpmath.log(p1 / q1))

    # the differences above are exact in float64, so the closed form sees the same real inputs
    _close(hinton.kd_loss(s, t, temperature=T, reduction="none"), _per_row(bern, s, t))
    _close(dkd.tckd(s, t, np.zeros(5, int), temperature=T, reduction="none"), _per_row(bern, s, t) / T**2)
    assert np.all(dkd.nckd(s, t, np.array([0, 1, 0, 1, 0]), temperature=T, reduction="none") == 0)


def test_identical_logits() -> None:
    z = _logits(0, (3, 7))
    assert np.all(hinton.kd_loss(z, z, reduction="none") == 0)
    assert np.all(dkd.dkd_loss(z, z, _targets(0, (3,), 7), reduction="none") == 0)

    def ent(v: Any) -> Any:
        return -mpmath.fsum(p * mpmath.log(p) for p in _softmax(v, 4.0))

    _close(hinton.soft_cross_entropy(z, z, reduction="none"), _per_row(ent, z))


def test_shift_and_temperature_invariances() -> None:
    """Invariance to per-row logit shifts, and kd_T(z, v) = T^2 kd_1(z/T, v/T); inputs are dyadic."""
    rng = np.random.default_rng(3)
    z, v = rng.integers(-64, 64, size=(2, 4, 6)) / 16.0
    y = _targets(3, (4,), 6)
    cz, cv = np.array([[5.0], [-3.0], [0.5], [1024.0]]), np.array([[-7.25], [2.0], [0.0], [-512.0]])
    for f, args in [
        (hinton.kd_loss, ()),
        (hinton.soft_cross_entropy, ()),
        (hinton.hinton_loss, (y,)),
        (dkd.tckd, (y,)),
        (dkd.nckd, (y,)),
        (dkd.dkd_loss, (y,)),
    ]:
        _close(f(z + cz, v + cv, *args, reduction="none"), f(z, v, *args, reduction="none"), 1e-15)
    _close(hinton.kd_loss(z, v, temperature=4.0), 16 * hinton.kd_loss(z / 4, v / 4, temperature=1.0), 1e-15)


def test_dkd_decomposition_and_composition() -> None:
    C, T, alpha, beta = 9, 2.5, 0.75, 6.0
    z, v, y = _logits(5, (6, C)), _logits(6, (6, C)), _targets(5, (6,), C)
    kd = hinton.kd_loss(z, v, temperature=T, reduction="none")
    tc = dkd.tckd(z, v, y, temperature=T, reduction="none")
    nc = dkd.nckd(z, v, y, temperature=T, reduction="none")
    pt = _per_row(lambda row, t: _softmax(row, T)[int(t)], v, y)
    _close(kd / T**2, tc + (1 - pt) * nc, 1e-13)
    d = dkd.dkd_loss(z, v, y, alpha=alpha, beta=beta, temperature=T, reduction="none")
    _close(d, T**2 * (alpha * tc + beta * nc), 1e-13)


def test_nckd_closed_form() -> None:
    """NCKD from an explicit renormalisation of the non-target probabilities (no log-sum-exp)."""
    C, T = 5, 3.0
    z, v, y = _logits(7, (4, C)), _logits(8, (4, C)), _targets(7, (4,), C)

    def ref(zr: Any, vr: Any, t: Any) -> Any:
        p, q = _softmax(vr, T), _softmax(zr, T)
        keep = [i for i in range(C) if i != int(t)]
        sp_, sq = mpmath.fsum(p[i] for i in keep), mpmath.fsum(q[i] for i in keep)
        return mpmath.fsum(p[i] / sp_ * mpmath.log((p[i] / sp_) / (q[i] / sq)) for i in keep)

    _close(dkd.nckd(z, v, y, temperature=T, reduction="none"), _per_row(ref, z, v, y))


def test_hinton_composition() -> None:
    C, T, lam = 6, 4.0, 0.3
    z, v, y = _logits(9, (5, C)), _logits(10, (5, C)), _targets(9, (5,), C)
    ce = _per_row(lambda zr, t: -mpmath.log(_softmax(zr, 1.0)[int(t)]), z, y)
    sce = hinton.soft_cross_entropy(z, v, temperature=T, reduction="none")
    _close(
        hinton.hinton_loss(z, v, y, temperature=T, lam=lam, reduction="none"),
        lam * ce + (1 - lam) * T**2 * sce,
    )
    ent = _per_row(lambda vr: -mpmath.fsum(p * mpmath.log(p) for p in _softmax(vr, T)), v)
    _close(sce, hinton.kd_loss(z, v, temperature=T, reduction="none") / T**2 + ent, 1e-13)


def test_against_sympy_expressions() -> None:
    """The oracle agrees with the symbolic tier's expressions evaluated at 50 digits (exact float inputs)."""
    C, t, T, lam, alpha, beta = 4, 2, 1.5, 0.25, 1.0, 8.0
    zs, vs, Ts = symbols(C)
    z, v = _logits(11, (C,)), _logits(12, (C,))
    point = {Ts: sp.Rational(T), **{s: sp.Rational(float(x)) for s, x in zip([*zs, *vs], [*z, *v])}}
    cases = [
        (hinton.kd_expr(zs, vs, Ts), hinton.kd_loss(z, v, temperature=T)),
        (hinton.soft_cross_entropy_expr(zs, vs, Ts), hinton.soft_cross_entropy(z, v, temperature=T)),
        (
            hinton.hinton_expr(zs, vs, t, Ts, sp.Rational(lam)),
            hinton.hinton_loss(z, v, t, temperature=T, lam=lam),
        ),
        (dkd.tckd_expr(zs, vs, t, Ts), dkd.tckd(z, v, t, temperature=T)),
        (dkd.nckd_expr(zs, vs, t, Ts), dkd.nckd(z, v, t, temperature=T)),
        (
            dkd.dkd_expr(zs, vs, t, Ts, alpha, beta),
            dkd.dkd_loss(z, v, t, temperature=T, alpha=alpha, beta=beta),
        ),
    ]
    for expr, value in cases:
        assert value.shape == ()
        _close(value, float(sp.N(expr.subs(point), 50)), 1e-15)


def test_reductions_shapes_and_dtype() -> None:
    C = 5
    z, v, y = _logits(13, (2, 3, C)), _logits(14, (2, 3, C)), _targets(13, (2, 3), C)
    for f, args in [(hinton.kd_loss, ()), (hinton.hinton_loss, (y,)), (dkd.dkd_loss, (y,))]:
        none = f(z, v, *args, reduction="none")
        assert none.shape == (2, 3) and none.dtype == np.float64
        total, mean = f(z, v, *args, reduction="sum"), f(z, v, *args)
        assert total.shape == () and mean.shape == () and mean.dtype == np.float64
        _close(total, none.sum())
        _close(mean, none.mean())
    assert hinton.kd_loss(z[0, 0], v[0, 0], reduction="none").shape == ()
    with pytest.raises(ValueError):
        hinton.kd_loss(z, v, reduction="max")


def test_global_precision_untouched() -> None:
    before = mpmath.mp.dps
    z = _logits(15, (2, 3))
    hinton.kd_loss(z, z[::-1])
    dkd.dkd_loss_grad(z, z[::-1], np.array([0, 2]))
    assert mpmath.mp.dps == before


# --------------------------------------------------------------------------------------------------------
# Gradients (numerical differentiation at 50 digits vs closed forms computed directly in mpmath)
# --------------------------------------------------------------------------------------------------------


def test_numerical_gradient_reaches_40_digits() -> None:
    """mpmath.diff on a naively written KD equals T (q - p) to 40 digits, and so does the oracle's sample."""
    T = mpmath.mpf(3)
    z, v = _logits(16, (6,)), _logits(17, (6,))
    with mpmath.workdps(50):
        zr, vr = tuple(mpmath.mpf(float(x)) for x in z), tuple(mpmath.mpf(float(x)) for x in v)

        def naive(zz: Any, vv: Any, t: Any) -> Any:
            p = [mpmath.exp(x / T) / mpmath.fsum(mpmath.exp(y / T) for y in vv) for x in vv]
            q = [mpmath.exp(x / T) / mpmath.fsum(mpmath.exp(y / T) for y in zz) for x in zz]
            return T**2 * mpmath.fsum(a * mpmath.log(a / b) for a, b in zip(p, q))

        p, q = _softmax(v, 3.0), _softmax(z, 3.0)
        exact = [T * (b - a) for a, b in zip(p, q)]
        for sample in (naive, partial(hinton._kd_sample, T=T)):
            num = numerical_gradient(sample, zr, vr, None)
            assert max(abs(a - b) for a, b in zip(num, exact)) < mpmath.mpf(10) ** -40


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_kd_and_soft_ce_grad(T: float) -> None:
    z, v = _logits(18, (3, 8)), _logits(19, (3, 8))

    def dq(zr: Any, vr: Any) -> list[Any]:
        return [b - a for a, b in zip(_softmax(vr, T), _softmax(zr, T))]

    diff = _per_row(dq, z, v)
    _close(hinton.kd_loss_grad(z, v, temperature=T), T * diff / 3)
    _close(hinton.soft_cross_entropy_grad(z, v, temperature=T, reduction="sum"), diff / T)
    g = np.array([0.5, -2.0, 3.0])
    _close(hinton.kd_loss_grad(z, v, temperature=T, reduction="none", grad_output=g), T * diff * g[:, None])
    _close(hinton.kd_loss_grad(z, v, temperature=T, grad_output=np.array(2.0)), 2 * T * diff / 3)


def test_hinton_grad() -> None:
    C, T, lam = 5, 2.0, 0.4
    z, v, y = _logits(20, (4, C)), _logits(21, (4, C)), _targets(20, (4,), C)

    def ref(zr: Any, vr: Any, t: Any) -> list[Any]:
        s1, q, p = _softmax(zr, 1.0), _softmax(zr, T), _softmax(vr, T)
        return [lam * (s1[k] - (k == int(t))) + (1 - lam) * T * (q[k] - p[k]) for k in range(C)]

    g = np.array([1.0, -1.0, 0.25, 3.0])
    got = hinton.hinton_loss_grad(z, v, y, temperature=T, lam=lam, reduction="none", grad_output=g)
    _close(got, _per_row(ref, z, v, y) * g[:, None], 1e-13)


def _dkd_grads(zr: Any, vr: Any, t: Any, T: float) -> tuple[list[Any], list[Any]]:
    """Closed-form TCKD and NCKD gradients (Zhao et al. CVPR 2022) from plain softmaxes."""
    t, C = int(t), len(zr)
    p, q = _softmax(vr, T), _softmax(zr, T)
    rest_p, rest_q = 1 - p[t], 1 - q[t]
    d = q[t] - p[t]
    g_t = [d / T if k == t else -d * (q[k] / rest_q) / T for k in range(C)]
    g_n = [0 if k == t else (q[k] / rest_q - p[k] / rest_p) / T for k in range(C)]
    return g_t, g_n


def test_dkd_grads() -> None:
    C, T, alpha, beta = 6, 4.0, 1.0, 8.0
    z, v, y = _logits(22, (3, C)), _logits(23, (3, C)), _targets(22, (3,), C)
    gt = _per_row(lambda a, b, t: _dkd_grads(a, b, t, T)[0], z, v, y)
    gn = _per_row(lambda a, b, t: _dkd_grads(a, b, t, T)[1], z, v, y)
    _close(dkd.tckd_grad(z, v, y, temperature=T, reduction="sum"), gt, 1e-13)
    got_n = dkd.nckd_grad(z, v, y, temperature=T, reduction="sum")
    _close(got_n, gn, 1e-13)
    assert np.all(got_n[np.arange(3), y] == 0) or np.max(np.abs(got_n[np.arange(3), y])) < 1e-40
    _close(
        dkd.dkd_loss_grad(z, v, y, alpha=alpha, beta=beta, temperature=T),
        T**2 * (alpha * gt + beta * gn) / 3,
        1e-13,
    )


def test_grad_default_grad_output_for_none_is_sum() -> None:
    z, v, y = _logits(24, (2, 4)), _logits(25, (2, 4)), _targets(24, (2,), 4)
    _close(dkd.tckd_grad(z, v, y, reduction="none"), dkd.tckd_grad(z, v, y, reduction="sum"))


def test_grad_fifty_classes() -> None:
    C, T = 50, 4.0
    z, v = _logits(26, (2, C)), _logits(27, (2, C))
    diff = _per_row(lambda zr, vr: [b - a for a, b in zip(_softmax(vr, T), _softmax(zr, T))], z, v)
    _close(hinton.kd_loss_grad(z, v, temperature=T), T * diff / 2, 1e-13)
