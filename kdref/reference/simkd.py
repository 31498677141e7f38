"""SimKD (Chen et al., CVPR 2022, arXiv:2203.14001) in NumPy float64: the feature loss and the reused-head logits."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_feature_pair, fail
from ._ops import Array, as_logits

__all__ = ["gap", "simkd_logits", "simkd_loss", "simkd_loss_grad"]


def _features(fn: str, projected: Any, teacher: Any) -> tuple[Array, Array]:
    p = as_logits(fn, "projected_student_features", projected)
    t = as_logits(fn, "teacher_features", teacher)
    check_feature_pair(fn, p.shape, t.shape)
    return p, t


def simkd_loss(projected_student_features: Any, teacher_features: Any) -> Array:
    """mean over all B·C·H·W elements of (P(f_s) − f_t)² (Chen et al. 2022, Eq. 3 as the official code trains it)."""
    p, t = _features("simkd_loss", projected_student_features, teacher_features)
    return np.asarray(np.mean((p - t) ** 2))


def simkd_loss_grad(projected_student_features: Any, teacher_features: Any, *, grad_output: Any = None) -> Array:
    """∂simkd_loss/∂P(f_s) = 2·(P(f_s) − f_t)/(B·C·H·W) (Chen et al. 2022)."""
    fn = "simkd_loss_grad"
    p, t = _features(fn, projected_student_features, teacher_features)
    g = 1.0 if grad_output is None else np.asarray(grad_output, dtype=np.float64)
    if np.shape(g) != ():
        fail(fn, f"`grad_output` must have the loss's shape (), got {np.shape(g)}")
    return g * 2.0 * (p - t) / p.size


def gap(features: Any) -> Array:
    """GAP(f)_{b,c} = mean over the spatial positions of f_{b,c,·} for (B, C, ...) features; (B, D) is returned as is."""
    f = as_logits("gap", "features", features)
    if f.ndim < 2:
        fail("gap", f"`features` must have shape (B, D) or (B, C, H, W), got {f.shape}")
    return f if f.ndim == 2 else f.reshape(*f.shape[:2], -1).mean(-1)


def simkd_logits(projected_features: Any, weight: Any, bias: Any = None) -> Array:
    """ŷ = W·GAP(P(f_s)) + b: the student's prediction through the reused teacher head (Chen et al. 2022)."""
    fn = "simkd_logits"
    g = gap(projected_features)
    W = as_logits(fn, "weight", weight)
    if W.ndim != 2 or W.shape[1] != g.shape[1]:
        fail(fn, f"`weight` must have shape (K, {g.shape[1]}) for features of {g.shape[1]} channels, got {W.shape}")
    out = g @ W.T
    if bias is not None:
        b = as_logits(fn, "bias", bias)
        if b.shape != (W.shape[0],):
            fail(fn, f"`bias` must have shape ({W.shape[0]},), got {b.shape}")
        out = out + b
    return out
