"""DIST: SymPy proofs of P1, P2, P4, P8, P9 and the float64 reference against the 50-digit mpmath oracle."""

from __future__ import annotations

import numpy as np
import pytest

import kdref.reference as R
from kdref.symbolic import dist as S


def test_p1_affine_invariance() -> None:
    """ρ(m1u + n1, m2v + n2) = sign(m1m2)·ρ(u, v) for all four sign patterns (length 3)."""
    assert all(r == 0 for r in S.prove_p1_affine_invariance(3))


def test_p2_symmetry() -> None:
    assert S.prove_p2_symmetry(4) == 0


def test_p4_half_squared_distance() -> None:
    assert S.prove_p4_half_squared_distance(3) == 0


def test_p8_gradient_orthogonality() -> None:
    assert S.prove_p8_gradient_orthogonality(3) == (0, 0)


def test_p9_intra_is_inter_of_transposes() -> None:
    assert S.prove_p9_intra_is_inter_of_transposes(2, 3) == 0


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_reference_matches_oracle(tau: float) -> None:
    """float64 reference values and gradients equal the 50-digit oracle to ~1e-12 relative."""
    rng = np.random.default_rng(3)
    s, t = rng.normal(size=(4, 5)) * 3, rng.normal(size=(4, 5)) * 3
    for fn in ("inter_class_relation", "intra_class_relation", "dist_loss"):
        assert float(getattr(R, fn)(s, t, tau=tau)) == pytest.approx(float(getattr(S, fn)(s, t, tau=tau)), rel=1e-12)
    np.testing.assert_allclose(R.pearson(s, t, dim=0), S.pearson(s, t, dim=0), rtol=1e-12, atol=1e-15)
    g = S.dist_loss_grad(s[:3, :4], t[:3, :4], tau=tau)
    np.testing.assert_allclose(R.dist_loss_grad(s[:3, :4], t[:3, :4], tau=tau), g, rtol=1e-10, atol=1e-13)
