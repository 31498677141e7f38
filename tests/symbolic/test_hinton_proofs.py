"""Symbolic proofs of the Hinton KD identities (Hinton, Vinyals, Dean 2015), with negative controls."""

from __future__ import annotations

import random

import pytest
import sympy as sp

from kdref.symbolic import hinton
from kdref.symbolic._ops import entropy, kl, simplify_residual, symbols, taylor_coefficients, tempered_softmax


def _numeric(expr: sp.Expr, C: int, seed: int = 0) -> float:
    """|expr| at a random point (logits in [-3, 3], T = 1.7, lam = 0.3): evidence of falsity."""
    z, v, T = symbols(C)
    rng = random.Random(seed)
    point = {x: sp.Rational(rng.randint(-300, 300), 100) for x in [*z, *v]}
    point.update({T: sp.Rational(17, 10), sp.Symbol("lam", real=True): sp.Rational(3, 10)})
    return abs(float(sp.N(expr.subs(point), 30)))


def _centered(x: list[sp.Symbol]) -> list[sp.Expr]:
    m = sp.Add(*x) / len(x)
    return [xi - m for xi in x]


@pytest.mark.parametrize("C", [2, 3, 4])
def test_soft_ce_gradient(C: int) -> None:
    assert hinton.prove_soft_ce_gradient(C) == 0


@pytest.mark.parametrize("C", [2, 3, 4])
def test_kd_gradient(C: int) -> None:
    assert hinton.prove_kd_gradient(C) == 0


@pytest.mark.parametrize(("C", "y"), [(2, 1), (3, 0), (4, 2)])
def test_hinton_gradient(C: int, y: int) -> None:
    assert hinton.prove_hinton_gradient(C, y) == 0


@pytest.mark.parametrize("C", [2, 3, 4, 5])
def test_soft_ce_is_kl_plus_entropy(C: int) -> None:
    assert hinton.prove_soft_ce_is_kl_plus_entropy(C) == 0


@pytest.mark.parametrize("C", [2, 3, 4, 5])
def test_high_temperature_limit(C: int) -> None:
    assert hinton.prove_high_temperature_limit(C) == 0


@pytest.mark.parametrize("C", [2, 3, 4, 5])
def test_high_temperature_kl_limit(C: int) -> None:
    assert hinton.prove_high_temperature_kl_limit(C) == 0


def test_high_temperature_next_term_is_finite_closed_form() -> None:
    """The 1/T coefficient is a finite polynomial: ((z_i-z̄)^2 - var z - (v_i-v̄)^2 + var v)/(2C)."""
    C = 3
    z, v, T = symbols(C)
    zc, vc = _centered(z), _centered(v)
    var_z, var_v = sp.Add(*[x**2 for x in zc]) / C, sp.Add(*[x**2 for x in vc]) / C
    for i, c in enumerate(hinton.high_temperature_next_term(C)):
        assert c.is_polynomial(*z, *v)
        assert not c.has(T, sp.zoo, sp.oo, sp.nan)
        assert sp.expand(c - (zc[i] ** 2 - var_z - vc[i] ** 2 + var_v) / (2 * C)) == 0
        assert c != 0  # a genuine O(1/T) correction for C = 3


def test_high_temperature_next_term_vanishes_for_binary() -> None:
    """For C = 2, (z_i - z̄)^2 = var z, so the error of the limit is O(1/T^2)."""
    assert hinton.high_temperature_next_term(2) == [0, 0]


# --------------------------------------------------------------------------------------------------------
# Negative controls: the same machinery must reject false identities (falsity confirmed numerically).
# --------------------------------------------------------------------------------------------------------


def test_soft_ce_equals_kl_without_entropy_is_rejected() -> None:
    C = 3
    z, v, T = symbols(C)
    wrong = hinton.soft_cross_entropy_expr(z, v, T) - kl(tempered_softmax(v, T), tempered_softmax(z, T))
    assert simplify_residual(wrong, [*z, *v], T) != 0
    assert _numeric(wrong, C) > 1e-6


def test_soft_ce_with_reversed_kl_is_rejected() -> None:
    C = 3
    z, v, T = symbols(C)
    p, q = tempered_softmax(v, T), tempered_softmax(z, T)
    wrong = hinton.soft_cross_entropy_expr(z, v, T) - kl(q, p) - entropy(p)
    assert simplify_residual(wrong, [*z, *v], T) != 0
    assert _numeric(wrong, C) > 1e-6


def test_gradient_without_inverse_temperature_is_rejected() -> None:
    C = 3
    z, v, T = symbols(C)
    p, q = tempered_softmax(v, T), tempered_softmax(z, T)
    ce = hinton.soft_cross_entropy_expr(z, v, T)
    for k in range(C):
        wrong = sp.diff(ce, z[k]) - (q[k] - p[k])
        assert simplify_residual(wrong, [*z, *v], T) != 0
        assert _numeric(wrong, C) > 1e-6


def test_kd_gradient_with_t_squared_is_rejected() -> None:
    C = 3
    z, v, T = symbols(C)
    p, q = tempered_softmax(v, T), tempered_softmax(z, T)
    wrong = sp.diff(hinton.kd_expr(z, v, T), z[0]) - T**2 * (q[0] - p[0])
    assert simplify_residual(wrong, [*z, *v], T) != 0
    assert _numeric(wrong, C) > 1e-6


def test_hinton_gradient_with_swapped_weights_is_rejected() -> None:
    C, y = 3, 1
    z, v, T = symbols(C)
    lam = sp.Symbol("lam", real=True)
    p, q, s1 = tempered_softmax(v, T), tempered_softmax(z, T), tempered_softmax(z, sp.Integer(1))
    swapped = (1 - lam) * (s1[y] - 1) + lam * T * (q[y] - p[y])
    wrong = sp.diff(hinton.hinton_expr(z, v, y, T, lam), z[y]) - swapped
    assert simplify_residual(wrong, [*z, *v], T) != 0
    assert _numeric(wrong, C) > 1e-6


def test_uncentred_high_temperature_limit_is_rejected() -> None:
    """(z_i - v_i)/C is the limit only for zero-mean logits; the general claim must fail."""
    C = 3
    z, v, _ = symbols(C)
    c = hinton.high_temperature_gradient_coefficients(C, 0, 2)
    assert c[0] == 0 and c[1] == 0
    assert sp.expand(c[2] - (z[0] - v[0]) / C) != 0


def test_wrong_high_temperature_kl_constant_is_rejected() -> None:
    C = 3
    z, v, _ = symbols(C)
    c = hinton.high_temperature_kl_coefficients(C, 2)
    zc, vc = _centered(z), _centered(v)
    wrong = sp.Add(*[(a - b) ** 2 for a, b in zip(zc, vc)]) / C  # 1/C instead of 1/(2C)
    assert sp.expand(c[2] - wrong) != 0


def test_taylor_coefficients_match_sympy_series() -> None:
    """The power-series arithmetic behind the limits agrees with sympy.series on every supported node."""
    u, x = sp.Symbol("u", positive=True), sp.Symbol("x", real=True)
    cases = [
        sp.exp(u) / (1 + u),
        sp.log(1 + u + u**2),
        sp.exp(sp.exp(u) - 1),
        u * sp.log(2 + sp.exp(x * u)) / (3 + u) ** 2,
    ]
    for e in cases:
        series = sp.series(e, u, 0, 5).removeO()
        coeffs = taylor_coefficients(e, u, 4)
        assert all(sp.simplify(coeffs[k] - series.coeff(u, k)) == 0 for k in range(5))
    assert taylor_coefficients(sp.exp(u), u, 2) == [1, 1, sp.Rational(1, 2)]


def test_taylor_coefficients_refuse_a_pole() -> None:
    u = sp.Symbol("u", positive=True)
    with pytest.raises(ValueError):
        taylor_coefficients(sp.exp(u) / u, u, 1)
    with pytest.raises(ValueError):
        taylor_coefficients(sp.log(u), u, 1)


def test_high_temperature_kd_series_for_binary_matches_diff() -> None:
    """Cross-check the tree-walking series against repeated differentiation for C = 2."""
    z, v, T = symbols(2)
    u = sp.Symbol("u", positive=True)
    g = kl(tempered_softmax(v, T), tempered_softmax(z, T)).subs(T, 1 / u)
    by_diff = [sp.expand(sp.diff(g, u, k).subs(u, 0) / sp.factorial(k)) for k in range(3)]
    assert hinton.high_temperature_kl_coefficients(2, 2) == by_diff
