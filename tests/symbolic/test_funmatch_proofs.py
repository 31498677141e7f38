"""Function matching: SymPy proofs (optimum = teacher, convexity, mixup fold) and the mpmath oracle."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from kdref import reference
from kdref.conformance.tolerances import ORACLE
from kdref.symbolic import funmatch


@pytest.mark.parametrize("C", [2, 3])
def test_funmatch_gradient(C: int) -> None:
    """∂(T²KL)/∂z_k = T(q_k − p_k), symbolically."""
    assert funmatch.prove_funmatch_gradient(C) == 0


@pytest.mark.parametrize("C", [2, 3])
def test_optimum_is_the_teacher(C: int) -> None:
    """At z = v the loss and its gradient vanish; with convexity and Gibbs, the teacher is the global optimum (B3)."""
    assert funmatch.prove_optimum_is_teacher(C) == 0
    assert funmatch.prove_gibbs_certificate(C) == 0


@pytest.mark.parametrize("C", [2, 3])
def test_hessian_is_the_softmax_covariance(C: int) -> None:
    """∂²(T²KL)/∂z² = diag q − q qᵀ, a covariance matrix (PSD: a sum of squares), so the loss is convex in z."""
    assert funmatch.prove_hessian_is_softmax_covariance(C) == 0
    assert funmatch.prove_softmax_covariance_is_psd(C + 1) == 0


def test_a_wrong_identity_leaves_a_residual() -> None:
    """The residual machinery is not vacuous: the gradient with T² in place of T is not an identity."""
    z, v, T = funmatch.symbols(2)
    loss = funmatch.funmatch_expr(z, v, T)
    q, p = funmatch.tempered_softmax(z, T), funmatch.tempered_softmax(v, T)
    assert funmatch.simplify_residual(sp.diff(loss, z[0]) - T**2 * (q[0] - p[0]), [*z, *v], T) != 0


def test_mixup_fold_and_swap() -> None:
    """fold(a) = fold(1 − a) ≥ 1/2; mixing (x, x′) with a = mixing (x′, x) with 1 − a (property 19, B5)."""
    assert funmatch.prove_mixup_fold_symmetry() == 0
    assert funmatch.prove_mixup_swap() == 0


@pytest.mark.parametrize("p", [1, 2, 3])
def test_folded_beta_density(p: int) -> None:
    """Beta(p, p) is symmetric about 1/2 and the folded density 2f integrates to 1 on [1/2, 1]."""
    assert funmatch.prove_folded_beta_density(sp.Integer(p)) == 0


def test_mixup_linearity_gap_is_nonzero_for_a_nonlinear_teacher() -> None:
    """For t(u) = u²: t(ax + (1 − a)x′) − [a t(x) + (1 − a) t(x′)] = −a(1 − a)(x − x′)² ≠ 0 (B4)."""
    assert funmatch.prove_mixup_linearity_gap() == 0
    a, x, x2 = sp.symbols("a x x2", real=True)
    gap = funmatch.mixup_linearity_gap(a, x, x2)
    assert gap.subs({a: sp.Rational(7, 10), x: 1, x2: -1}) == sp.Rational(-21, 25)


@pytest.mark.parametrize("T", [0.5, 1.0, 4.0])
def test_reference_matches_the_oracle(T: float) -> None:
    """kdref.reference.funmatch_loss and its gradient equal the 50-digit oracle (mpmath.diff gradients)."""
    rng = np.random.default_rng(int(T * 10))
    s, t = rng.standard_normal((2, 3, 4)) * 3.0
    go = np.asarray(1.7)
    np.testing.assert_allclose(
        reference.funmatch_loss(s, t, temperature=T),
        funmatch.funmatch_loss(s, t, temperature=T),
        rtol=ORACLE.value_rtol,
        atol=ORACLE.value_atol,
    )
    np.testing.assert_allclose(
        reference.funmatch_loss_grad(s, t, temperature=T, grad_output=go),
        funmatch.funmatch_loss_grad(s, t, temperature=T, grad_output=go),
        rtol=ORACLE.grad_rtol,
        atol=ORACLE.grad_atol * 10,
    )
