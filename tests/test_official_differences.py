"""Measured differences between kdref and the official formulas of Hinton KD and DKD (numbers quoted in the docs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kdref
from kdref import reference as R

from .official import mdistiller_dkd, mdistiller_kd, mdistiller_nckd, mdistiller_tckd


def test_mdistiller_tckd_overflows_where_kdref_is_exact() -> None:
    """Student [0, 200, 0, 0, 0], target 0, T = 1, float32: log of an underflowed p_t gives inf and NaN gradients."""
    s = torch.tensor([[0.0, 200.0, 0.0, 0.0, 0.0]], requires_grad=True)
    t, y = torch.zeros(1, 5), torch.tensor([0])
    official = mdistiller_dkd(s, t, y, 1.0, 8.0, 1.0)
    official.backward()
    assert torch.isinf(official) and torch.isnan(s.grad).all()
    s.grad = None
    ours = kdref.dkd_loss(s, t, y, temperature=1.0)
    ours.backward()
    exact = R.dkd_loss(s.detach().numpy(), t.numpy(), y.numpy(), temperature=1.0)
    assert float(exact) == pytest.approx(1228.4092426875, rel=1e-12)
    assert ours.item() == pytest.approx(float(exact), rel=1e-6)
    assert torch.isfinite(s.grad).all()
    # In float64 the official formula is still exact here: the failure is float32's underflow of p_t.
    assert float(mdistiller_dkd(s.detach().double(), t.double(), y, 1.0, 8.0, 1.0)) == pytest.approx(float(exact))


def test_mdistiller_mask_leaks_when_the_target_leads_by_1000() -> None:
    """Teacher [2000, 0, 0, 0], target 0, T = 1: the −1000 mask leaves mass on the target; NCKD 1003.4 vs 0.309."""
    s, t, y = torch.tensor([[0.0, 1.0, 2.0, 3.0]]), torch.tensor([[2000.0, 0.0, 0.0, 0.0]]), torch.tensor([0])
    exact = float(R.nckd(s.numpy(), t.numpy(), y.numpy(), temperature=1.0))
    assert exact == pytest.approx(0.30899352, rel=1e-6)
    assert float(kdref.nckd(s, t, y, temperature=1.0)) == pytest.approx(exact, rel=1e-6)
    assert float(mdistiller_nckd(s.double(), t.double(), y, 1.0)) == pytest.approx(1003.4076, rel=1e-6)
    # Below the leak the mask is harmless: a gap of 100 agrees to float64 precision.
    t2 = torch.tensor([[100.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert float(mdistiller_nckd(s.double(), t2, y, 1.0)) == pytest.approx(
        float(R.nckd(s.numpy(), t2.numpy(), y.numpy(), temperature=1.0)), rel=1e-12
    )


def test_official_dkd_at_unit_weights_is_not_kd() -> None:
    """dkd(α = β = 1) drops the per-sample (1 − p_t) weight: 8.979 vs KD 8.881 on a fixed (64, 100) batch, T = 4."""
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(64, 100, generator=g) * 3, torch.randn(64, 100, generator=g) * 3
    y = torch.randint(0, 100, (64,), generator=g)
    kd, dkd = float(kdref.kd_loss(s, t)), float(kdref.dkd_loss(s, t, y, alpha=1.0, beta=1.0))
    assert kd == pytest.approx(8.8814, abs=1e-3) and dkd == pytest.approx(8.9786, abs=1e-3)
    assert float(mdistiller_dkd(s, t, y, 1.0, 1.0, 4.0)) == pytest.approx(dkd, rel=1e-5)
    assert float(mdistiller_kd(s, t, 4.0)) == pytest.approx(kd, rel=1e-5)
    # With the per-sample weight β_i = 1 − p_t,i the decomposition gives KD back exactly.
    p_t = torch.softmax(t.double() / 4, 1).gather(1, y[:, None])[:, 0]
    tc = kdref.tckd(s.double(), t.double(), y, reduction="none")
    nc = kdref.nckd(s.double(), t.double(), y, reduction="none")
    assert float((16 * (tc + (1 - p_t) * nc)).mean()) == pytest.approx(
        float(kdref.kd_loss(s.double(), t.double())), rel=1e-12
    )


@pytest.mark.parametrize("seed", range(3))
def test_official_formulas_agree_with_kdref_on_tame_inputs(seed: int) -> None:
    """Away from overflow and mask leaks, mdistiller's KD, TCKD and NCKD equal kdref's batch means (float64)."""
    g = torch.Generator().manual_seed(seed)
    s, t = (
        torch.randn(16, 10, generator=g, dtype=torch.float64) * 2,
        torch.randn(16, 10, generator=g, dtype=torch.float64) * 2,
    )
    y = torch.randint(0, 10, (16,), generator=g)
    T = 4.0
    np.testing.assert_allclose(float(mdistiller_kd(s, t, T)), float(kdref.kd_loss(s, t, temperature=T)), rtol=1e-12)
    np.testing.assert_allclose(
        float(mdistiller_tckd(s, t, y, T)), T * T * float(kdref.tckd(s, t, y, temperature=T)), rtol=1e-12
    )
    np.testing.assert_allclose(
        float(mdistiller_nckd(s, t, y, T)), T * T * float(kdref.nckd(s, t, y, temperature=T)), rtol=1e-10
    )
