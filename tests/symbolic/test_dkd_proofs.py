"""Symbolic proofs of the DKD identities (Zhao et al. CVPR 2022), with negative controls."""

from __future__ import annotations

import random

import pytest
import sympy as sp

from kdref.symbolic import dkd
from kdref.symbolic._ops import kl, simplify_residual, softmax_excluding, symbols, tempered_softmax


def _numeric(expr: sp.Expr, C: int, seed: int = 0) -> float:
    """|expr| at a random point (logits in [-3, 3], T = 1.7, alpha = 0.6, beta = 2.3): evidence of falsity."""
    z, v, T = symbols(C)
    rng = random.Random(seed)
    point = {x: sp.Rational(rng.randint(-300, 300), 100) for x in [*z, *v]}
    point.update({T: sp.Rational(17, 10), sp.Symbol("alpha", real=True): sp.Rational(3, 5)})
    point[sp.Symbol("beta", real=True)] = sp.Rational(23, 10)
    return abs(float(sp.N(expr.subs(point), 30)))


@pytest.mark.parametrize("C", [2, 3, 4, 5])
def test_decomposition(C: int) -> None:
    assert dkd.prove_decomposition(C, 0) == 0


@pytest.mark.parametrize("t", [0, 1, 2])
def test_decomposition_every_target_c3(t: int) -> None:
    assert dkd.prove_decomposition(3, t) == 0


def test_decomposition_last_target_c5() -> None:
    assert dkd.prove_decomposition(5, 4) == 0


def test_nckd_binary_zero() -> None:
    assert dkd.prove_nckd_binary_zero(0) == 0
    assert dkd.prove_nckd_binary_zero(1) == 0


@pytest.mark.parametrize(("C", "t"), [(2, 1), (3, 0), (4, 2)])
def test_tckd_gradient(C: int, t: int) -> None:
    assert dkd.prove_tckd_gradient(C, t) == 0


@pytest.mark.parametrize(("C", "t"), [(2, 1), (3, 1), (4, 3)])
def test_nckd_gradient(C: int, t: int) -> None:
    assert dkd.prove_nckd_gradient(C, t) == 0


@pytest.mark.parametrize(("C", "t"), [(2, 0), (3, 1)])
def test_dkd_gradient(C: int, t: int) -> None:
    assert dkd.prove_dkd_gradient(C, t) == 0


@pytest.mark.parametrize(("C", "t"), [(3, 0), (4, 2)])
def test_nckd_independent_of_target_logits(C: int, t: int) -> None:
    assert dkd.prove_nckd_independent_of_target_logits(C, t) == 0


# --------------------------------------------------------------------------------------------------------
# Negative controls: the same machinery must reject false identities (and the falsity is confirmed
# numerically, so a non-zero residual is not an artefact of the simplifier).
# --------------------------------------------------------------------------------------------------------


def test_wrong_decomposition_factor_is_rejected() -> None:
    """The study note's slip: weight NCKD by p_t (= 1 - p_{\\t}) instead of 1 - p_t."""
    C, t = 3, 0
    z, v, T = symbols(C)
    p = tempered_softmax(v, T)
    kl_pq = kl(p, tempered_softmax(z, T))
    wrong = kl_pq - dkd.tckd_expr(z, v, t, T) - p[t] * dkd.nckd_expr(z, v, t, T)
    assert simplify_residual(wrong, [*z, *v], T) != 0
    assert _numeric(wrong, C) > 1e-6


def test_decomposition_weighted_by_student_is_rejected() -> None:
    """Weighting NCKD by the student's 1 - q_t instead of the teacher's 1 - p_t must fail."""
    C, t = 3, 1
    z, v, T = symbols(C)
    q = tempered_softmax(z, T)
    wrong = kl(tempered_softmax(v, T), q) - dkd.tckd_expr(z, v, t, T) - (1 - q[t]) * dkd.nckd_expr(z, v, t, T)
    assert simplify_residual(wrong, [*z, *v], T) != 0
    assert _numeric(wrong, C) > 1e-6


def test_decomposition_without_nckd_is_rejected() -> None:
    C, t = 4, 1
    z, v, T = symbols(C)
    wrong = kl(tempered_softmax(v, T), tempered_softmax(z, T)) - dkd.tckd_expr(z, v, t, T)
    assert simplify_residual(wrong, [*z, *v], T) != 0
    assert _numeric(wrong, C) > 1e-6


def test_tckd_is_not_zero_for_binary() -> None:
    z, v, T = symbols(2)
    tckd = dkd.tckd_expr(z, v, 0, T)
    assert simplify_residual(tckd, [*z, *v], T) != 0
    assert _numeric(tckd, 2) > 1e-6


def test_tckd_gradient_without_inverse_temperature_is_rejected() -> None:
    C, t = 3, 0
    expected, z, v, T = dkd.tckd_gradient_expected(C, t)
    tckd = dkd.tckd_expr(z, v, t, T)
    for k in range(C):
        wrong = sp.diff(tckd, z[k]) - expected[k] * T
        assert simplify_residual(wrong, [*z, *v], T) != 0
        assert _numeric(wrong, C) > 1e-6


def test_tckd_gradient_with_full_softmax_is_rejected() -> None:
    """Using q_i instead of the renormalised hat q_i in the non-target TCKD gradient must fail."""
    C, t, k = 3, 0, 1
    z, v, T = symbols(C)
    q, p = tempered_softmax(z, T), tempered_softmax(v, T)
    wrong = sp.diff(dkd.tckd_expr(z, v, t, T), z[k]) + (q[t] - p[t]) * q[k] / T
    assert simplify_residual(wrong, [*z, *v], T) != 0
    assert _numeric(wrong, C) > 1e-6


def test_nckd_gradient_with_wrong_sign_is_rejected() -> None:
    C, t, k = 3, 0, 2
    z, v, T = symbols(C)
    qh, ph = softmax_excluding(z, t, T), softmax_excluding(v, t, T)
    wrong = sp.diff(dkd.nckd_expr(z, v, t, T), z[k]) - (ph[1] - qh[1]) / T
    assert simplify_residual(wrong, [*z, *v], T) != 0
    assert _numeric(wrong, C) > 1e-6


def test_target_logit_dependence_is_detected() -> None:
    """TCKD and the full KL do depend on the target logits, so the independence check can fail."""
    C, t = 3, 1
    z, v, T = symbols(C)
    for expr, x in [(dkd.tckd_expr(z, v, t, T), z[t]), (dkd.tckd_expr(z, v, t, T), v[t])]:
        d = sp.diff(expr, x)
        assert simplify_residual(d, [*z, *v], T) != 0
        assert _numeric(d, C) > 1e-6
    d = sp.diff(dkd.nckd_expr(z, v, t, T), z[0])
    assert simplify_residual(d, [*z, *v], T) != 0
