"""SimKD: SymPy proofs of S1–S4 on small symbolic maps, and the mpmath oracle."""

from __future__ import annotations

import numpy as np
import pytest

from kdref import reference
from kdref.conformance.tolerances import ORACLE
from kdref.symbolic import simkd


@pytest.mark.parametrize(("C", "K", "H", "W"), [(2, 3, 2, 2), (3, 2, 1, 3)])
def test_aligned_features_give_the_teachers_logits(C: int, K: int, H: int, W: int) -> None:
    """S1: P(f_s) = f_t ⇒ W·GAP(P(f_s)) + b = W·GAP(f_t) + b, for symbolic W, b and maps."""
    assert simkd.prove_aligned_features_give_teacher_logits(C, K, H, W) == 0


@pytest.mark.parametrize(("H", "k"), [(4, 2), (6, 3), (6, 2), (4, 4), (3, 1)])
def test_gap_commutes_with_adaptive_pooling_when_sizes_divide(H: int, k: int) -> None:
    """S2: GAP(AdaptiveAvgPool_k(f)) = GAP(f) when k divides H."""
    assert simkd.prove_gap_commutes_with_pooling(H, k) == 0


@pytest.mark.parametrize(("H", "k"), [(5, 3), (7, 4), (5, 2)])
def test_gap_does_not_commute_when_sizes_do_not_divide(H: int, k: int) -> None:
    """S2 edge case: overlapping bins make the residual nonzero."""
    assert simkd.prove_gap_commutes_with_pooling(H, k) != 0


@pytest.mark.parametrize(("C", "H", "W"), [(1, 2, 2), (2, 2, 3)])
def test_gap_jensen_certificate(C: int, H: int, W: int) -> None:
    """S3: ‖d‖²_F/(HW) − ‖GAP d‖² is a sum of squares, so the logit error ≤ ‖W‖_op·‖d‖_F/√(HW)."""
    assert simkd.prove_gap_jensen_certificate(C, H, W) == 0


def test_mse_is_the_squared_norm_over_numel() -> None:
    """S4: B·C·H·W·MSE = ‖p − t‖²_F (the official mean vs the paper's sum)."""
    assert simkd.prove_mse_is_scaled_squared_norm(2, 2, 1, 2) == 0


@pytest.mark.parametrize("shape", [(2, 3), (2, 2, 2, 2)])
def test_reference_matches_the_oracle(shape: tuple[int, ...]) -> None:
    """kdref.reference.simkd_loss and its gradient equal the 50-digit oracle (mpmath.diff gradients)."""
    rng = np.random.default_rng(len(shape))
    p, t = rng.standard_normal((2, *shape)) * 5.0
    np.testing.assert_allclose(
        reference.simkd_loss(p, t), simkd.simkd_loss(p, t), rtol=ORACLE.value_rtol, atol=ORACLE.value_atol
    )
    np.testing.assert_allclose(
        reference.simkd_loss_grad(p, t, grad_output=0.75),
        simkd.simkd_loss_grad(p, t, grad_output=0.75),
        rtol=ORACLE.grad_rtol,
        atol=ORACLE.grad_atol,
    )
