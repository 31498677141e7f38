"""funmatch_loss: bad input in both tiers, dtypes, torch.compile, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kdref
from kdref import reference


def test_funmatch_bad_input_reference() -> None:
    """The reference rejects bad logits and temperatures with the function and argument named."""
    s, t = np.zeros((2, 3)), np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"funmatch_loss: `temperature` must be > 0.0"):
        reference.funmatch_loss(s, t, temperature=0.0)
    with pytest.raises(ValueError, match=r"funmatch_loss: `temperature` must be finite"):
        reference.funmatch_loss(s, t, temperature=float("nan"))
    with pytest.raises(TypeError, match=r"funmatch_loss: `temperature` must be a real number"):
        reference.funmatch_loss(s, t, temperature="1")
    with pytest.raises(ValueError, match=r"funmatch_loss: `teacher_logits` has shape \(2, 4\)"):
        reference.funmatch_loss(s, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"funmatch_loss: `student_logits` must have shape"):
        reference.funmatch_loss(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"funmatch_loss: `teacher_logits` must be finite"):
        reference.funmatch_loss(s, np.full((2, 3), np.inf))
    with pytest.raises(TypeError, match=r"funmatch_loss: `student_logits` must be a floating-point"):
        reference.funmatch_loss(np.zeros((2, 3), dtype=int), t)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'reduction'"):
        reference.funmatch_loss(s, t, reduction="sum")
    with pytest.raises(ValueError, match=r"funmatch_loss_grad: `grad_output` must have the loss's shape"):
        reference.funmatch_loss_grad(s, t, grad_output=np.ones(2))


def test_funmatch_bad_input_torch() -> None:
    """The Torch tier rejects bad logits and temperatures with the function and argument named."""
    s, t = torch.zeros(2, 3), torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"funmatch_loss: `temperature` must be > 0.0"):
        kdref.funmatch_loss(s, t, temperature=-1.0)
    with pytest.raises(ValueError, match=r"funmatch_loss: `teacher_logits` has shape \(2, 4\)"):
        kdref.funmatch_loss(s, torch.zeros(2, 4))
    with pytest.raises(TypeError, match=r"funmatch_loss: `student_logits` must be a torch.Tensor"):
        kdref.funmatch_loss(np.zeros((2, 3)), t)
    with pytest.raises(TypeError, match=r"funmatch_loss: `teacher_logits` must be a floating-point"):
        kdref.funmatch_loss(s, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"funmatch_loss: `student_logits` must be finite"):
        kdref.funmatch_loss(torch.tensor([[0.0, float("nan"), 1.0]]), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"funmatch_loss: `student_logits` must have at least 2 classes"):
        kdref.funmatch_loss(torch.zeros(2, 1), torch.zeros(2, 1))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_funmatch_output_dtype(dtype: torch.dtype) -> None:
    """Half precision computes and returns float32; float32 and float64 keep their dtype; the output is a scalar."""
    s = torch.randn(4, 5).to(dtype).requires_grad_()
    out = kdref.funmatch_loss(s, torch.randn(4, 5).to(dtype))
    assert out.shape == () and out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    out.backward()
    assert s.grad is not None and s.grad.dtype == dtype


def test_funmatch_default_temperature_is_one() -> None:
    """The default T = 1 (big_vision bit_i1k): funmatch_loss(s, t) = kd_loss(s, t, temperature=1)."""
    s, t = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    assert torch.equal(kdref.funmatch_loss(s, t), kdref.kd_loss(s, t, temperature=1.0))
    assert float(reference.funmatch_loss(s.numpy(), t.numpy())) == float(
        reference.kd_loss(s.numpy(), t.numpy(), temperature=1.0)
    )


def test_funmatch_compiles_without_graph_breaks() -> None:
    """torch.compile(fullgraph=True) traces funmatch_loss and mixup_batch with no graph break and the same value."""

    def step(x: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        (x_mixed,) = kdref.mixup_batch(x, a=0.7)
        return kdref.funmatch_loss(s + x_mixed.sum(-1, keepdim=True), t, temperature=2.0)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    x, s, t = torch.randn(4, 3), torch.randn(4, 5), torch.randn(4, 5)
    torch.testing.assert_close(compiled(x, s, t), step(x, s, t))


def test_funmatch_gradcheck() -> None:
    """torch.autograd.gradcheck passes in float64 at T = 1 and T = 3."""
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 5, dtype=torch.float64, generator=g).requires_grad_()
    t = torch.randn(3, 5, dtype=torch.float64, generator=g)
    for T in (1.0, 3.0):
        assert torch.autograd.gradcheck(lambda x, T=T: kdref.funmatch_loss(x, t, temperature=T), (s,))
