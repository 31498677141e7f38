"""Hinton KD (Hinton, Vinyals, Dean 2015, arXiv:1503.02531) in NumPy float64, with analytic gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_logits_shape, check_real

__all__ = [
    "hinton_loss",
    "hinton_loss_grad",
    "kd_loss",
    "kd_loss_grad",
    "soft_cross_entropy",
    "soft_cross_entropy_grad",
    "teacher_entropy",
]

from ._ops import (
    Array,
    as_logits,
    as_pair,
    as_target,
    as_temperature,
    grad_scale,
    kl_rows,
    log_softmax,
    reduce,
    take_target,
)


def _tempered(fn: str, student: Any, teacher: Any, T: Any) -> tuple[Array, Array, float]:
    """Validated log σ(s/T), log σ(t/T) and T."""
    s, t = as_pair(fn, student, teacher)
    T = as_temperature(fn, T)
    return log_softmax(s / T), log_softmax(t / T), T


def kd_loss(student_logits: Any, teacher_logits: Any, *, temperature: float = 4.0, reduction: str = "mean") -> Array:
    """T²·KL(σ(t/T) ‖ σ(s/T)) per sample (Hinton et al. 2015, KL form with the T² factor)."""
    log_q, log_p, T = _tempered("kd_loss", student_logits, teacher_logits, temperature)
    return reduce("kd_loss", T * T * kl_rows(log_p, log_q), reduction)


def kd_loss_grad(
    student_logits: Any,
    teacher_logits: Any,
    *,
    temperature: float = 4.0,
    reduction: str = "mean",
    grad_output: Any = None,
) -> Array:
    """∂kd_loss/∂s = T·(σ(s/T) − σ(t/T)) per sample, times ∂reduction (Hinton et al. 2015, Eq. 2 × T²)."""
    log_q, log_p, T = _tempered("kd_loss_grad", student_logits, teacher_logits, temperature)
    g = grad_scale("kd_loss_grad", log_q.shape[:-1], reduction, grad_output)
    return g * T * (np.exp(log_q) - np.exp(log_p))


def soft_cross_entropy(
    student_logits: Any, teacher_logits: Any, *, temperature: float = 4.0, reduction: str = "mean"
) -> Array:
    """−Σ_j σ(t/T)_j log σ(s/T)_j per sample, no T² (Hinton et al. 2015, the soft objective)."""
    log_q, log_p, _ = _tempered("soft_cross_entropy", student_logits, teacher_logits, temperature)
    return reduce("soft_cross_entropy", -np.sum(np.exp(log_p) * log_q, axis=-1), reduction)


def soft_cross_entropy_grad(
    student_logits: Any,
    teacher_logits: Any,
    *,
    temperature: float = 4.0,
    reduction: str = "mean",
    grad_output: Any = None,
) -> Array:
    """∂soft_cross_entropy/∂s = (σ(s/T) − σ(t/T))/T per sample (Hinton et al. 2015, Eq. 2)."""
    log_q, log_p, T = _tempered("soft_cross_entropy_grad", student_logits, teacher_logits, temperature)
    g = grad_scale("soft_cross_entropy_grad", log_q.shape[:-1], reduction, grad_output)
    return g * (np.exp(log_q) - np.exp(log_p)) / T


def _hinton_parts(fn: str, student: Any, teacher: Any, target: Any, T: Any, lam: Any):
    log_q, log_p, T = _tempered(fn, student, teacher, T)
    s = np.asarray(student, dtype=np.float64)  # already validated by _tempered
    y = as_target(fn, target, s.shape)
    lam = check_real(fn, "lam", lam, low=0.0, high=1.0)
    return s, y, log_q, log_p, T, lam


def hinton_loss(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    temperature: float = 4.0,
    lam: float = 0.1,
    reduction: str = "mean",
) -> Array:
    """λ·CE(s, y) + (1 − λ)·T²·soft_cross_entropy(s, t) per sample (Hinton et al. 2015, weighted average)."""
    s, y, log_q, log_p, T, lam = _hinton_parts("hinton_loss", student_logits, teacher_logits, target, temperature, lam)
    hard = -take_target(log_softmax(s), y)
    soft = -np.sum(np.exp(log_p) * log_q, axis=-1)
    return reduce("hinton_loss", lam * hard + (1.0 - lam) * T * T * soft, reduction)


def hinton_loss_grad(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    temperature: float = 4.0,
    lam: float = 0.1,
    reduction: str = "mean",
    grad_output: Any = None,
) -> Array:
    """λ·(σ(s) − e_y) + (1 − λ)·T·(σ(s/T) − σ(t/T)) per sample (Hinton et al. 2015)."""
    s, y, log_q, log_p, T, lam = _hinton_parts(
        "hinton_loss_grad", student_logits, teacher_logits, target, temperature, lam
    )
    onehot = np.arange(s.shape[-1]) == y[..., None]
    g = grad_scale("hinton_loss_grad", s.shape[:-1], reduction, grad_output)
    return g * (lam * (np.exp(log_softmax(s)) - onehot) + (1.0 - lam) * T * (np.exp(log_q) - np.exp(log_p)))


def teacher_entropy(teacher_logits: Any, *, temperature: float = 4.0, reduction: str = "mean") -> Array:
    """H(σ(t/T)) = −Σ_j p_j log p_j per sample, so that soft CE = KL + H (Hinton et al. 2015, identity H3)."""
    t = as_logits("teacher_entropy", "teacher_logits", teacher_logits)
    check_logits_shape("teacher_entropy", "teacher_logits", t.shape)
    log_p = log_softmax(t / as_temperature("teacher_entropy", temperature))
    p = np.exp(log_p)
    return reduce("teacher_entropy", -np.sum(np.where(p > 0, p * log_p, 0.0), axis=-1), reduction)
