"""Decoupled KD (Zhao et al., CVPR 2022, arXiv:2203.08679) in PyTorch, with an exact target/non-target split."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_real
from ..reference.dkd import dkd_warmup_factor
from ._fused import DKDRows, fused_enabled
from ._ops import check_target, nontarget_logsumexp, reduce, target_mask, tempered_rows

__all__ = ["dkd_loss", "dkd_warmup_factor", "nckd", "tckd"]


def _split_rows(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(log b, log p̂) of rows x = z/T: b = [p_t, 1 − p_t] and p̂ the non-target softmax (0 at the target)."""
    lse = torch.logsumexp(x, -1)
    lse_rest = nontarget_logsumexp(x, mask)
    x_t = (x * mask).sum(-1)
    log_b = torch.stack([x_t - lse, lse_rest - lse], -1)
    log_hat = (x - lse_rest[:, None]).masked_fill(mask, 0.0)
    return log_b, log_hat


def _rows(fn: str, student_logits: Tensor, teacher_logits: Tensor, target: Tensor, temperature: float):
    s, t, T = tempered_rows(fn, student_logits, teacher_logits, temperature)
    y = check_target(fn, target, student_logits)
    return s, t, y, T


def _tckd_rows(S, Tt) -> Tensor:
    log_bs, log_bt = S[0], Tt[0]
    return (log_bt.exp() * (log_bt - log_bs)).sum(-1)


def _nckd_rows(S, Tt, mask: Tensor) -> Tensor:
    log_qs, log_pt = S[1], Tt[1]
    p = log_pt.exp().masked_fill(mask, 0.0)
    return (p * (log_pt - log_qs)).sum(-1)


def _dkd_rows_plain(x: Tensor, z: Tensor, y: Tensor, coef: float, alpha: float, beta: float) -> Tensor:
    """coef·(α·TCKD + β·NCKD) per row in plain ops (a term with weight 0 left out): the reference for DKDRows."""
    mask = target_mask(y, x.shape[-1])
    S, Tt = _split_rows(x, mask), _split_rows(z, mask)
    rows = alpha * _tckd_rows(S, Tt) if alpha != 0.0 else None
    if beta != 0.0:
        n = beta * _nckd_rows(S, Tt, mask)
        rows = n if rows is None else rows + n
    return coef * (rows if rows is not None else torch.zeros_like(x[:, 0]))


def _dkd_rows(x: Tensor, z: Tensor, y: Tensor, coef: float, alpha: float, beta: float) -> Tensor:
    """The eager kernel: the fused Function (one saved (M, C) gradient) unless turned off."""
    if fused_enabled():
        return DKDRows.apply(x, z, y, coef, alpha, beta)
    return _dkd_rows_plain(x, z, y, coef, alpha, beta)


def _tckd(student_logits, teacher_logits, target, temperature, reduction, rows_fn=_dkd_rows) -> Tensor:
    s, t, y, _ = _rows("tckd", student_logits, teacher_logits, target, temperature)
    return reduce("tckd", rows_fn(s, t, y, 1.0, 1.0, 0.0), reduction, student_logits.shape[:-1])


def _nckd(student_logits, teacher_logits, target, temperature, reduction, rows_fn=_dkd_rows) -> Tensor:
    s, t, y, _ = _rows("nckd", student_logits, teacher_logits, target, temperature)
    return reduce("nckd", rows_fn(s, t, y, 1.0, 0.0, 1.0), reduction, student_logits.shape[:-1])


def _dkd(student_logits, teacher_logits, target, alpha, beta, temperature, reduction, rows_fn=_dkd_rows) -> Tensor:
    fn = "dkd_loss"
    alpha = check_real(fn, "alpha", alpha, low=0.0)
    beta = check_real(fn, "beta", beta, low=0.0)
    s, t, y, T = _rows(fn, student_logits, teacher_logits, target, temperature)
    return reduce(fn, rows_fn(s, t, y, T * T, alpha, beta), reduction, student_logits.shape[:-1])


def tckd(
    student_logits: Tensor, teacher_logits: Tensor, target: Tensor, *, temperature: float = 4.0, reduction: str = "mean"
) -> Tensor:
    r"""TCKD = KL(b_teacher ‖ b_student), b = [p_t, 1 − p_t] at temperature T, no T² (Zhao et al. 2022, Eq. 5).

    log b is computed from log-sum-exps (log p_t = z_t/T − LSE, log(1 − p_t) = LSE_{j≠t} − LSE), never as the log
    of a softmax, so it stays finite when p_t underflows. Shapes, dtypes and reductions as in ``kd_loss``;
    ``target`` holds integer class indices.
    """
    return _tckd(student_logits, teacher_logits, target, temperature, reduction)


def nckd(
    student_logits: Tensor, teacher_logits: Tensor, target: Tensor, *, temperature: float = 4.0, reduction: str = "mean"
) -> Tensor:
    r"""NCKD = KL(p̂_teacher ‖ p̂_student) over the non-target classes, no T² (Zhao et al. 2022, Eq. 5).

    The non-target softmax leaves the target out exactly (its term is −∞ inside the log-sum-exp), so NCKD does
    not depend on the target logits at all. For C = 2 it is exactly 0.
    """
    return _nckd(student_logits, teacher_logits, target, temperature, reduction)


def dkd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
    reduction: str = "mean",
) -> Tensor:
    r"""T²·(α·TCKD + β·NCKD) per sample (Zhao et al. 2022, Eq. 7; T² and the defaults α = 1, β = 8, T = 4 as in
    mdistiller's CIFAR-100 configuration).

    With α = 1 and a per-sample β = 1 − p_t(teacher) this equals ``kd_loss`` exactly; a constant β does not.
    Multiply by :func:`dkd_warmup_factor` for the official warm-up.
    """
    return _dkd(student_logits, teacher_logits, target, alpha, beta, temperature, reduction)
