"""DeiT (Touvron et al. 2021): SymPy proofs with negative controls, and the reference against the mpmath oracle."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import kdref.reference.deit as R
from kdref.conformance.tolerances import ORACLE
from kdref.symbolic import deit as D
from kdref.symbolic._ops import cross_entropy, simplify_residual, symbols, tempered_softmax


@pytest.mark.parametrize("C", [3, 4])
@pytest.mark.parametrize(("y", "y_t"), [(0, 1), (2, 2), (2, 0)])
def test_hard_loss_is_two_hot_cross_entropy(C: int, y: int, y_t: int) -> None:
    assert D.prove_hard_is_two_hot_cross_entropy(C, y, y_t) == 0


def test_two_hot_proof_has_teeth() -> None:
    """Negative control: a 0.6/0.4 target does not give Eq. 3, and the residual says so."""
    z, _, _ = symbols(3)
    wrong = [sp.Rational(6, 10), sp.Rational(4, 10), sp.Integer(0)]
    assert simplify_residual(D.deit_hard_expr(z, 0, 1) - cross_entropy(wrong, tempered_softmax(z, 1)), z, 1) != 0


@pytest.mark.parametrize(("C", "y", "y_t"), [(3, 0, 1), (3, 1, 1), (4, 3, 0)])
def test_hard_gradient(C: int, y: int, y_t: int) -> None:
    assert D.prove_hard_gradient(C, y, y_t) == 0


@pytest.mark.parametrize(("C", "y"), [(2, 1), (3, 0)])
def test_soft_gradient(C: int, y: int) -> None:
    assert D.prove_soft_gradient(C, y) == 0


def test_soft_term_is_kd() -> None:
    assert D.prove_soft_term_is_kd(3) == 0


def test_kl_directions_agree_to_second_order_and_differ_at_third() -> None:
    """Near a uniform teacher both orders are the same quadratic form; the u³ terms differ by a factor 2."""
    assert D.prove_kl_directions_agree_to_second_order() == 0
    forward, reverse = D.kl_direction_coefficients(3)
    a, b = sp.symbols("a b", real=True)
    assert sp.simplify(reverse[3] - 2 * forward[3]) == 0
    assert forward[3].subs({a: 1, b: 0}) != 0


def test_printed_order_is_a_different_quantity() -> None:
    """A concrete counterexample: s = (4, 0, −2), t = (0, 3, 0), τ = 1 gives KL(t‖s) − KL(s‖t) ≈ 0.6293 ≠ 0."""
    gap = D.kl_direction_gap([4, 0, -2], [0, 3, 0], 1)
    assert float(sp.N(gap, 30)) == pytest.approx(0.62926, abs=1e-5)
    assert D.kl_direction_gap([1, 2, 3], [1, 2, 3], 2) == 0


def _data(seed: int, shape: tuple[int, ...], scale: float = 3.0):
    rng = np.random.default_rng(seed)
    s, t = rng.normal(size=shape) * scale, rng.normal(size=shape) * scale
    return s, t, rng.integers(0, shape[-1], shape[:-1])


def _close(actual, expected, rtol: float, atol: float) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    ("shape", "scale", "tau", "norm"), [((3, 4), 3.0, 3.0, "batch"), ((2, 2, 5), 30.0, 0.5, "numel")]
)
def test_reference_soft_loss_matches_oracle(shape, scale: float, tau: float, norm: str) -> None:
    s, t, y = _data(1, shape, scale)
    kw = {"alpha": 0.3, "tau": tau, "kl_normalization": norm}
    _close(R.deit_soft_loss(s, t, y, **kw), D.deit_soft_loss(s, t, y, **kw), ORACLE.value_rtol * 10, ORACLE.value_atol)
    go = np.array(1.7)
    _close(
        R.deit_soft_loss_grad(s, t, y, grad_output=go, **kw),
        D.deit_soft_loss_grad(s, t, y, grad_output=go, **kw),
        ORACLE.grad_rtol * 10,
        ORACLE.grad_atol * scale,
    )


def test_reference_hard_loss_matches_oracle_with_ties() -> None:
    s, t, y = _data(2, (4, 5))
    t[0] = [1.0, 2.0, 2.0, 0.0, 2.0]  # a tie: both tiers take class 1
    _close(R.deit_hard_loss(s, t, y), D.deit_hard_loss(s, t, y), ORACLE.value_rtol * 10, ORACLE.value_atol)
    _close(R.deit_hard_loss_grad(s, t, y), D.deit_hard_loss_grad(s, t, y), ORACLE.grad_rtol * 10, ORACLE.grad_atol)


@pytest.mark.parametrize("distillation", ["hard", "soft", "none"])
def test_reference_two_head_loss_matches_oracle(distillation: str) -> None:
    c, t, y = _data(3, (3, 4))
    d = np.random.default_rng(4).normal(size=c.shape)
    kw = {"distillation": distillation, "alpha": 0.4, "tau": 2.0, "kl_normalization": "numel"}
    _close(R.deit_loss(c, d, t, y, **kw), D.deit_loss(c, d, t, y, **kw), ORACLE.value_rtol * 10, ORACLE.value_atol)
    for got, expected in zip(R.deit_loss_grad(c, d, t, y, **kw), D.deit_loss_grad(c, d, t, y, **kw)):
        _close(got, expected, ORACLE.grad_rtol * 10, ORACLE.grad_atol)
