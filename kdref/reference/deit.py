"""DeiT distillation (Touvron et al., ICML 2021, arXiv:2012.12877) in NumPy float64, with analytic gradients.

Every loss is a mean over samples; logits of shape (..., C) are read as M = prod(...) samples of C classes (for
(N, C) that is the batch). The teacher's hard label is the lowest index among its maximal logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._checks import (
    check_choice,
    check_logits_shape,
    check_pair,
    check_real,
    check_target_shape,
    check_temperature,
)
from ._ops import (
    Array,
    as_logits,
    as_pair,
    as_target,
    grad_scale,
    kl_rows,
    log_softmax,
    take_target,
    target_mask,
)

__all__ = [
    "deit_fusion_scores",
    "deit_hard_loss",
    "deit_hard_loss_grad",
    "deit_loss",
    "deit_loss_grad",
    "deit_predict",
    "deit_soft_loss",
    "deit_soft_loss_grad",
    "deit_teacher_labels",
]

KL_NORMALIZATIONS = ("batch", "numel")
DISTILLATIONS = ("hard", "soft", "none")
FUSIONS = ("logit_mean", "softmax_sum")


def _alpha(fn: str, alpha: Any) -> float:
    return check_real(fn, "alpha", alpha, low=0.0, high=1.0)


def _argmax_lowest(x: Array) -> NDArray[np.intp]:
    """argmax over the last axis; ties go to the lowest index (np.argmax returns the first occurrence)."""
    return np.argmax(x, axis=-1).astype(np.intp)


def _softmax(x: Array) -> Array:
    return np.exp(log_softmax(x))


def _cross_entropy_rows(s: Array, y: NDArray[np.intp]) -> Array:
    """CE(σ(s), e_y) = LSE(s) − s_y per sample."""
    return -take_target(log_softmax(s), y)


def _soft_kl_rows(s: Array, t: Array, tau: float) -> Array:
    """KL(σ(t/τ) ‖ σ(s/τ)) per sample."""
    return kl_rows(log_softmax(t / tau), log_softmax(s / tau))


def _kl_scale(tau: float, C: int, kl_normalization: str) -> float:
    """τ² for "batch" (sum over classes, mean over samples), τ²/C for "numel" (mean over samples and classes)."""
    return tau * tau / (C if kl_normalization == "numel" else 1)


def _soft_parts(fn: str, student: Any, teacher: Any, target: Any, alpha: Any, tau: Any, kl_normalization: Any):
    s, t = as_pair(fn, student, teacher)
    y = as_target(fn, target, s.shape)
    alpha = _alpha(fn, alpha)
    tau = check_temperature(fn, tau, name="tau")
    kl_normalization = check_choice(fn, "kl_normalization", kl_normalization, KL_NORMALIZATIONS)
    return s, t, y, alpha, tau, _kl_scale(tau, s.shape[-1], kl_normalization)


def deit_teacher_labels(teacher_logits: Any) -> NDArray[np.intp]:
    """y_t = argmax_c Z_t(c), the lowest such c on ties (Touvron et al. 2021, Eq. 3); shape (...)."""
    fn = "deit_teacher_labels"
    t = as_logits(fn, "teacher_logits", teacher_logits)
    check_logits_shape(fn, "teacher_logits", t.shape)
    return _argmax_lowest(t)


def deit_soft_loss(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    alpha: float = 0.1,
    tau: float = 3.0,
    kl_normalization: str = "batch",
) -> Array:
    """(1 − α)·CE(σ(s), y) + α·τ²·KL(σ(t/τ) ‖ σ(s/τ)), mean over samples (Touvron et al. 2021, Eq. 2)."""
    s, t, y, alpha, tau, scale = _soft_parts(
        "deit_soft_loss", student_logits, teacher_logits, target, alpha, tau, kl_normalization
    )
    rows = (1.0 - alpha) * _cross_entropy_rows(s, y) + alpha * scale * _soft_kl_rows(s, t, tau)
    return np.asarray(np.mean(rows))


def deit_soft_loss_grad(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    alpha: float = 0.1,
    tau: float = 3.0,
    kl_normalization: str = "batch",
    grad_output: Any = None,
) -> Array:
    """((1 − α)·(σ(s) − e_y) + α·τ·(σ(s/τ) − σ(t/τ))·[1/C for "numel"]) / M (Touvron et al. 2021, Eq. 2)."""
    fn = "deit_soft_loss_grad"
    s, t, y, alpha, tau, scale = _soft_parts(fn, student_logits, teacher_logits, target, alpha, tau, kl_normalization)
    g = grad_scale(fn, s.shape[:-1], "mean", grad_output)
    ce = _softmax(s) - target_mask(s.shape, y)
    kl = (_softmax(s / tau) - _softmax(t / tau)) / tau
    return g * ((1.0 - alpha) * ce + alpha * scale * kl)


def _hard_parts(fn: str, student: Any, teacher: Any, target: Any):
    s, t = as_pair(fn, student, teacher)
    y = as_target(fn, target, s.shape)
    return s, y, _argmax_lowest(t)


def deit_hard_loss(student_logits: Any, teacher_logits: Any, target: Any) -> Array:
    """½·CE(σ(s), y) + ½·CE(σ(s), y_t), y_t = argmax t, mean over samples (Touvron et al. 2021, Eq. 3)."""
    s, y, y_t = _hard_parts("deit_hard_loss", student_logits, teacher_logits, target)
    return np.asarray(np.mean(0.5 * _cross_entropy_rows(s, y) + 0.5 * _cross_entropy_rows(s, y_t)))


def deit_hard_loss_grad(student_logits: Any, teacher_logits: Any, target: Any, *, grad_output: Any = None) -> Array:
    """(σ(s) − ½e_y − ½e_{y_t}) / M (Touvron et al. 2021, Eq. 3: CE with the two-hot target)."""
    fn = "deit_hard_loss_grad"
    s, y, y_t = _hard_parts(fn, student_logits, teacher_logits, target)
    g = grad_scale(fn, s.shape[:-1], "mean", grad_output)
    return g * (_softmax(s) - 0.5 * target_mask(s.shape, y) - 0.5 * target_mask(s.shape, y_t))


def _two_head_parts(
    fn: str, cls: Any, dist: Any, teacher: Any, target: Any, distillation: Any, alpha: Any, tau: Any, norm: Any
):
    c = as_logits(fn, "cls_logits", cls)
    d = as_logits(fn, "dist_logits", dist)
    t = as_logits(fn, "teacher_logits", teacher)
    check_pair(fn, c.shape, d.shape, "cls_logits", "dist_logits")
    check_pair(fn, c.shape, t.shape, "cls_logits", "teacher_logits")
    check_target_shape(fn, np.shape(target), c.shape, "cls_logits")
    y = as_target(fn, target, c.shape)
    distillation = check_choice(fn, "distillation", distillation, DISTILLATIONS)
    alpha = _alpha(fn, alpha)
    tau = check_temperature(fn, tau, name="tau")
    norm = check_choice(fn, "kl_normalization", norm, KL_NORMALIZATIONS)
    return c, d, t, y, distillation, alpha, tau, _kl_scale(tau, c.shape[-1], norm)


def deit_loss(
    cls_logits: Any,
    dist_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    distillation: str = "hard",
    alpha: float = 0.5,
    tau: float = 1.0,
    kl_normalization: str = "batch",
) -> Array:
    """(1 − α)·CE(σ(Z_cls), y) + α·L_dist(Z_dist, Z_t), mean over samples (Touvron et al. 2021, §4, the two heads).

    L_dist = CE(σ(Z_dist), argmax Z_t) for "hard", τ²·KL(σ(Z_t/τ) ‖ σ(Z_dist/τ)) for "soft"; "none" is CE(σ(Z_cls), y).
    """
    c, d, t, y, distillation, alpha, tau, scale = _two_head_parts(
        "deit_loss", cls_logits, dist_logits, teacher_logits, target, distillation, alpha, tau, kl_normalization
    )
    base = _cross_entropy_rows(c, y)
    if distillation == "none":
        return np.asarray(np.mean(base))
    if distillation == "hard":
        extra = _cross_entropy_rows(d, _argmax_lowest(t))
    else:
        extra = scale * _soft_kl_rows(d, t, tau)
    return np.asarray(np.mean((1.0 - alpha) * base + alpha * extra))


def deit_loss_grad(
    cls_logits: Any,
    dist_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    distillation: str = "hard",
    alpha: float = 0.5,
    tau: float = 1.0,
    kl_normalization: str = "batch",
    grad_output: Any = None,
) -> tuple[Array, Array]:
    """(∂/∂Z_cls, ∂/∂Z_dist) = ((1 − α)(σ(Z_cls) − e_y)/M, α·∂L_dist/∂Z_dist / M) (Touvron et al. 2021, §4)."""
    fn = "deit_loss_grad"
    c, d, t, y, distillation, alpha, tau, scale = _two_head_parts(
        fn, cls_logits, dist_logits, teacher_logits, target, distillation, alpha, tau, kl_normalization
    )
    g = grad_scale(fn, c.shape[:-1], "mean", grad_output)
    ce = _softmax(c) - target_mask(c.shape, y)
    if distillation == "none":
        return g * ce, np.zeros_like(d)
    if distillation == "hard":
        extra = _softmax(d) - target_mask(d.shape, _argmax_lowest(t))
    else:
        extra = scale * (_softmax(d / tau) - _softmax(t / tau)) / tau
    return g * (1.0 - alpha) * ce, g * alpha * extra


def _fusion_inputs(fn: str, cls: Any, dist: Any, fusion: Any) -> tuple[Array, Array, str]:
    c = as_logits(fn, "cls_logits", cls)
    d = as_logits(fn, "dist_logits", dist)
    check_pair(fn, c.shape, d.shape, "cls_logits", "dist_logits")
    return c, d, check_choice(fn, "fusion", fusion, FUSIONS)


def _fused(c: Array, d: Array, fusion: str) -> Array:
    return (c + d) / 2.0 if fusion == "logit_mean" else _softmax(c) + _softmax(d)


def deit_fusion_scores(cls_logits: Any, dist_logits: Any, *, fusion: str = "logit_mean") -> Array:
    """(Z_cls + Z_dist)/2 ("logit_mean", the official inference) or σ(Z_cls) + σ(Z_dist) ("softmax_sum", the paper)."""
    c, d, fusion = _fusion_inputs("deit_fusion_scores", cls_logits, dist_logits, fusion)
    return _fused(c, d, fusion)


def deit_predict(cls_logits: Any, dist_logits: Any, *, fusion: str = "logit_mean") -> NDArray[np.intp]:
    """argmax_c of :func:`deit_fusion_scores`, lowest index on ties; shape (...) (Touvron et al. 2021, late fusion)."""
    c, d, fusion = _fusion_inputs("deit_predict", cls_logits, dist_logits, fusion)
    return _argmax_lowest(_fused(c, d, fusion))
