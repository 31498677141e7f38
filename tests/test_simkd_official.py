"""simkd_loss against the official SimKD training criterion (official-code facts re-implemented here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import kdref
from kdref import reference


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_simkd_loss_equals_the_official_mse_loss(dtype: torch.dtype) -> None:
    """The official criterion, nn.MSELoss() (mean over B·C·H·W), gives the same value and gradient."""
    p = torch.randn(8, 16, 4, 4, dtype=dtype, requires_grad=True)
    t = torch.relu(torch.randn(8, 16, 4, 4, dtype=dtype))
    ours = kdref.simkd_loss(p, t)
    official = nn.MSELoss()(p, t)
    torch.testing.assert_close(ours, official, rtol=4 * torch.finfo(dtype).eps, atol=0)
    (g_ours,) = torch.autograd.grad(ours, p)
    (g_off,) = torch.autograd.grad(official, p)
    torch.testing.assert_close(g_ours, g_off, rtol=4 * torch.finfo(dtype).eps, atol=0)


def test_paper_squared_norm_is_numel_times_the_mse() -> None:
    """The paper's ‖f_t − P(f_s)‖² = simkd_loss·B·C·H·W: 1,048,576 for B = 64 CIFAR ResNet-32x4 maps (256×8×8)."""
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal((2, 64, 256, 8, 8))
    sum_sq = float(np.sum((p - t) ** 2))
    factor = sum_sq / float(reference.simkd_loss(p, t))
    assert factor == pytest.approx(64 * 256 * 8 * 8, rel=1e-12)
    assert 64 * 256 * 8 * 8 == 1_048_576
    # Per sample the factor is C·H·W = 16,384, so the gradient of the MSE is the squared norm's over 1,048,576.
    np.testing.assert_allclose(reference.simkd_loss_grad(p, t) * factor, 2 * (p - t), rtol=1e-12)
