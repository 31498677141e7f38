"""simkd_loss: bad input in both tiers, dtypes, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kdref
from kdref import reference


@pytest.mark.parametrize("tier", ["numpy", "torch"])
def test_simkd_loss_bad_input(tier: str) -> None:
    """Mismatched shapes, rank < 2, empty tensors and integer dtypes are rejected with the argument named."""
    f = reference.simkd_loss if tier == "numpy" else kdref.simkd_loss
    conv = np.asarray if tier == "numpy" else torch.as_tensor
    x = conv(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"simkd_loss: `teacher_features` has shape \(2, 3, 2, 2\) but"):
        f(x, conv(np.zeros((2, 3, 2, 2))))
    with pytest.raises(ValueError, match=r"simkd_loss: `projected_student_features` must have shape \(B, D\)"):
        f(conv(np.zeros(3)), conv(np.zeros(3)))
    with pytest.raises(ValueError, match=r"simkd_loss: `teacher_features` must hold at least one element"):
        f(conv(np.zeros((2, 3))), conv(np.zeros((2, 0))))
    with pytest.raises(TypeError, match=r"simkd_loss: `projected_student_features` must be a floating-point"):
        f(conv(np.zeros((2, 3), dtype=np.int64)), conv(np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"simkd_loss: `teacher_features` must be finite"):
        f(conv(np.zeros((2, 3))), conv(np.array([[0.0, np.nan, 0.0], [0.0, 0.0, 0.0]])))


def test_simkd_loss_bad_input_tier_specific() -> None:
    """The reference checks grad_output's shape; Torch rejects non-tensors."""
    with pytest.raises(ValueError, match=r"simkd_loss_grad: `grad_output` must have the loss's shape \(\)"):
        reference.simkd_loss_grad(np.zeros((2, 3)), np.zeros((2, 3)), grad_output=np.ones(2))
    with pytest.raises(TypeError, match=r"simkd_loss: `teacher_features` must be a torch.Tensor"):
        kdref.simkd_loss(torch.zeros(2, 3), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"simkd_logits: `weight` must have shape \(K, 3\)"):
        reference.simkd_logits(np.zeros((2, 3, 2, 2)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"simkd_logits: `bias` must have shape \(4,\)"):
        reference.simkd_logits(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_simkd_loss_output_dtype(dtype: torch.dtype) -> None:
    """Half precision computes and returns float32; float32 and float64 keep theirs; the gradient keeps the input's."""
    p = torch.randn(2, 4, 3, 3).to(dtype).requires_grad_()
    out = kdref.simkd_loss(p, torch.randn(2, 4, 3, 3).to(dtype))
    assert out.shape == () and out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    out.backward()
    assert p.grad is not None and p.grad.dtype == dtype


def test_simkd_loss_gradcheck() -> None:
    """torch.autograd.gradcheck passes in float64 for (B, D) and (B, C, H, W) features."""
    for shape in ((3, 5), (2, 3, 2, 2)):
        p = torch.randn(*shape, dtype=torch.float64).requires_grad_()
        t = torch.randn(*shape, dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda x, t=t: kdref.simkd_loss(x, t), (p,))
