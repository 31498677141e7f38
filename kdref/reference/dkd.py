"""Decoupled KD (Zhao et al., CVPR 2022, arXiv:2203.08679) in NumPy float64, with analytic gradients.

The target/non-target split is exact: log b_t = z_t/T − LSE(z/T), log b_\\t = LSE_{j≠t}(z/T) − LSE(z/T) and
log p̂_j = z_j/T − LSE_{j≠t}(z/T), where LSE_{j≠t} leaves the target term out (no −1000 mask, no log of a softmax).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_real, fail
from ._ops import (
    Array,
    as_pair,
    as_target,
    as_temperature,
    grad_scale,
    kl_rows,
    logsumexp,
    nontarget_logsumexp,
    reduce,
    take_target,
    target_mask,
)

__all__ = ["dkd_loss", "dkd_loss_grad", "dkd_warmup_factor", "nckd", "nckd_grad", "tckd", "tckd_grad"]


class _Split:
    """Binary (target, rest) and non-target log-probabilities of one set of logits at temperature T."""

    def __init__(self, x: Array, y: Any):
        lse = logsumexp(x)[..., 0]
        lse_rest = nontarget_logsumexp(x, y)[..., 0]
        self.mask = target_mask(x.shape, y)
        self.log_b = np.stack([take_target(x, y) - lse, lse_rest - lse], axis=-1)
        # log p̂ over all classes, with the target entry set to −∞ (probability exactly 0).
        self.log_hat = np.where(self.mask, -np.inf, x - lse_rest[..., None])


def _split(fn: str, student: Any, teacher: Any, target: Any, T: Any) -> tuple[_Split, _Split, float]:
    s, t = as_pair(fn, student, teacher)
    y = as_target(fn, target, s.shape)
    T = as_temperature(fn, T)
    return _Split(s / T, y), _Split(t / T, y), T


def _nckd_rows(S: _Split, Tt: _Split) -> Array:
    log_p = np.where(Tt.mask, 0.0, Tt.log_hat)
    log_q = np.where(S.mask, 0.0, S.log_hat)
    p = np.where(Tt.mask, 0.0, np.exp(log_p))
    return np.sum(np.where(p > 0, p * (log_p - log_q), 0.0), axis=-1)


def tckd(
    student_logits: Any, teacher_logits: Any, target: Any, *, temperature: float = 4.0, reduction: str = "mean"
) -> Array:
    """TCKD = KL(b_teacher ‖ b_student), b = [p_t, 1 − p_t] at temperature T, no T² (Zhao et al. 2022, Eq. 5)."""
    S, Tt, _ = _split("tckd", student_logits, teacher_logits, target, temperature)
    return reduce("tckd", kl_rows(Tt.log_b, S.log_b), reduction)


def _tckd_grad_rows(S: _Split, Tt: _Split, T: float) -> Array:
    dt = np.exp(S.log_b[..., :1]) - np.exp(Tt.log_b[..., :1])
    return dt * (S.mask - np.exp(S.log_hat)) / T


def _nckd_grad_rows(S: _Split, Tt: _Split, T: float) -> Array:
    return (np.exp(S.log_hat) - np.exp(Tt.log_hat)) / T


def tckd_grad(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    temperature: float = 4.0,
    reduction: str = "mean",
    grad_output: Any = None,
) -> Array:
    """∂TCKD/∂s = (q_t − p_t)/T·(e_t − q̂), q̂ the student's non-target distribution (Zhao et al. 2022)."""
    S, Tt, T = _split("tckd_grad", student_logits, teacher_logits, target, temperature)
    return grad_scale("tckd_grad", S.mask.shape[:-1], reduction, grad_output) * _tckd_grad_rows(S, Tt, T)


def nckd(
    student_logits: Any, teacher_logits: Any, target: Any, *, temperature: float = 4.0, reduction: str = "mean"
) -> Array:
    """NCKD = KL(p̂_teacher ‖ p̂_student) over the non-target classes, no T² (Zhao et al. 2022, Eq. 5).

    For C = 2 the non-target distribution is a point mass and NCKD is exactly 0.
    """
    S, Tt, _ = _split("nckd", student_logits, teacher_logits, target, temperature)
    return reduce("nckd", _nckd_rows(S, Tt), reduction)


def nckd_grad(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    temperature: float = 4.0,
    reduction: str = "mean",
    grad_output: Any = None,
) -> Array:
    """∂NCKD/∂s_j = (q̂_j − p̂_j)/T for j ≠ t and 0 at the target (Zhao et al. 2022)."""
    S, Tt, T = _split("nckd_grad", student_logits, teacher_logits, target, temperature)
    return grad_scale("nckd_grad", S.mask.shape[:-1], reduction, grad_output) * _nckd_grad_rows(S, Tt, T)


def _weights(fn: str, alpha: Any, beta: Any) -> tuple[float, float]:
    return check_real(fn, "alpha", alpha, low=0.0), check_real(fn, "beta", beta, low=0.0)


def dkd_loss(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
    reduction: str = "mean",
) -> Array:
    """T²·(α·TCKD + β·NCKD) per sample (Zhao et al. 2022, Eq. 7; T² and defaults as in mdistiller, CIFAR-100)."""
    alpha, beta = _weights("dkd_loss", alpha, beta)
    S, Tt, T = _split("dkd_loss", student_logits, teacher_logits, target, temperature)
    rows = T * T * (alpha * kl_rows(Tt.log_b, S.log_b) + beta * _nckd_rows(S, Tt))
    return reduce("dkd_loss", rows, reduction)


def dkd_loss_grad(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
    reduction: str = "mean",
    grad_output: Any = None,
) -> Array:
    """T²·(α·∂TCKD/∂s + β·∂NCKD/∂s) (Zhao et al. 2022)."""
    alpha, beta = _weights("dkd_loss_grad", alpha, beta)
    S, Tt, T = _split("dkd_loss_grad", student_logits, teacher_logits, target, temperature)
    g = grad_scale("dkd_loss_grad", S.mask.shape[:-1], reduction, grad_output)
    return g * T * T * (alpha * _tckd_grad_rows(S, Tt, T) + beta * _nckd_grad_rows(S, Tt, T))


def dkd_warmup_factor(epoch: int, warmup_epochs: int = 20) -> float:
    """min(epoch / warmup, 1) with 1-based epochs, the factor mdistiller puts on the DKD term (not on CE)."""
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 1:
        fail("dkd_warmup_factor", f"`epoch` must be an integer >= 1 (epochs are 1-based), got {epoch!r}")
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, (int, np.integer)) or warmup_epochs < 1:
        fail("dkd_warmup_factor", f"`warmup_epochs` must be an integer >= 1, got {warmup_epochs!r}")
    return min(float(epoch) / float(warmup_epochs), 1.0)
