"""Hinton KD (Hinton, Vinyals, Dean 2015, arXiv:1503.02531) in PyTorch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_real
from ._fused import KDRows, fused_enabled
from ._ops import check_target, reduce, tempered_rows

__all__ = ["hinton_loss", "kd_loss", "soft_cross_entropy"]


def _kl_rows(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p ‖ q) per row from log-probabilities (p is exactly 0 where it underflows, so 0·log 0 = 0)."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _soft_rows_plain(x: Tensor, z: Tensor, coef: float, kl: bool) -> Tensor:
    """coef·KL(σ(z) ‖ σ(x)) (kl) or coef·(−Σ σ(z) log σ(x)) per row, in plain ops (the reference for KDRows)."""
    if kl:
        return coef * _kl_rows(torch.log_softmax(z, -1), torch.log_softmax(x, -1))
    return coef * -(torch.softmax(z, -1) * torch.log_softmax(x, -1)).sum(-1)


def _soft_rows(x: Tensor, z: Tensor, coef: float, kl: bool) -> Tensor:
    """The eager kernel: the fused Function (one saved (M, C) gradient) unless turned off."""
    if fused_enabled():
        return KDRows.apply(x, z, coef, kl)
    return _soft_rows_plain(x, z, coef, kl)


def _kd(student_logits, teacher_logits, temperature, reduction, rows_fn=_soft_rows) -> Tensor:
    fn = "kd_loss"
    s, t, T = tempered_rows(fn, student_logits, teacher_logits, temperature)
    rows = rows_fn(s, t, T * T, True)
    return reduce(fn, rows, reduction, student_logits.shape[:-1])


def _soft_ce(student_logits, teacher_logits, temperature, reduction, rows_fn=_soft_rows) -> Tensor:
    fn = "soft_cross_entropy"
    s, t, _ = tempered_rows(fn, student_logits, teacher_logits, temperature)
    rows = rows_fn(s, t, 1.0, False)
    return reduce(fn, rows, reduction, student_logits.shape[:-1])


def _hinton(student_logits, teacher_logits, target, temperature, lam, reduction, rows_fn=_soft_rows) -> Tensor:
    fn = "hinton_loss"
    s, t, T = tempered_rows(fn, student_logits, teacher_logits, temperature)
    lam = check_real(fn, "lam", lam, low=0.0, high=1.0)
    y = check_target(fn, target, student_logits)
    hard = F.cross_entropy(student_logits.reshape(s.shape).to(s.dtype), y, reduction="none")
    rows = lam * hard + rows_fn(s, t, (1.0 - lam) * T * T, False)
    return reduce(fn, rows, reduction, student_logits.shape[:-1])


def kd_loss(
    student_logits: Tensor, teacher_logits: Tensor, *, temperature: float = 4.0, reduction: str = "mean"
) -> Tensor:
    r"""T²·KL(σ(t/T) ‖ σ(s/T)) per sample (Hinton et al. 2015, KL form with the T² factor).

    Note the argument order: the student comes first in the call, but the teacher distribution is the first
    (reference) argument of the KL.

    Shape:
        student_logits, teacher_logits: (N, C) or (..., C), C ≥ 2. Output: a scalar for "mean" (over all
        samples) and "sum"; the leading shape (...) for "none".

    Half-precision inputs are computed and returned in float32; float64 stays float64. The gradient flows to
    the student logits only.

    Example:
        >>> import torch
        >>> s = torch.tensor([[2.0, 0.0, -1.0]]); t = torch.tensor([[1.0, 0.5, -0.5]])
        >>> round(float(kd_loss(s, t, temperature=4.0)), 6)
        0.273414
    """
    return _kd(student_logits, teacher_logits, temperature, reduction)


def soft_cross_entropy(
    student_logits: Tensor, teacher_logits: Tensor, *, temperature: float = 4.0, reduction: str = "mean"
) -> Tensor:
    r"""−Σ_j σ(t/T)_j log σ(s/T)_j per sample, no T² (Hinton et al. 2015, the soft objective).

    Equals KL(σ(t/T) ‖ σ(s/T)) + H(σ(t/T)): the same gradient as the KL form, a value larger by the teacher
    entropy. Shapes, dtypes and reductions as in :func:`kd_loss`.
    """
    return _soft_ce(student_logits, teacher_logits, temperature, reduction)


def hinton_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor,
    *,
    temperature: float = 4.0,
    lam: float = 0.1,
    reduction: str = "mean",
) -> Tensor:
    r"""λ·CE(s, y) + (1 − λ)·T²·soft_cross_entropy(s, t) per sample (Hinton et al. 2015, weighted average).

    The hard term uses the raw student logits (T = 1); ``lam`` ∈ [0, 1] weights the hard term (defaults T = 4,
    λ = 0.1: mdistiller's CIFAR-100 KD weights 0.1 / 0.9). ``target`` holds integer class indices of the
    logits' leading shape. Shapes, dtypes and reductions as in :func:`kd_loss`.
    """
    return _hinton(student_logits, teacher_logits, target, temperature, lam, reduction)
