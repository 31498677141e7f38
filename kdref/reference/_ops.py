"""NumPy float64 building blocks: input conversion and checks, log-sum-exp, KL between rows, reductions."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._checks import (
    check_pair,
    check_reduction,
    check_target_shape,
    check_temperature,
    fail,
    target_range_message,
)

Array = NDArray[np.float64]


def as_logits(fn: str, name: str, x: Any) -> Array:
    """Convert to a float64 array, rejecting non-floating dtypes and non-finite values."""
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        fail(fn, f"`{name}` must be a floating-point array, got dtype {arr.dtype}", TypeError)
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        fail(fn, f"`{name}` must be finite; it holds {int(np.sum(~np.isfinite(arr)))} NaN or infinite values")
    return arr


def as_pair(fn: str, student: Any, teacher: Any) -> tuple[Array, Array]:
    """Student and teacher logits as float64 arrays of one validated shape."""
    s = as_logits(fn, "student_logits", student)
    t = as_logits(fn, "teacher_logits", teacher)
    check_pair(fn, s.shape, t.shape)
    return s, t


def as_target(fn: str, target: Any, logits_shape: tuple[int, ...]) -> NDArray[np.intp]:
    """Integer class indices of the logits' leading shape, each in [0, C)."""
    y = np.asarray(target)
    if not np.issubdtype(y.dtype, np.integer):
        fail(fn, f"`target` must hold integer class indices, got dtype {y.dtype}", TypeError)
    check_target_shape(fn, y.shape, logits_shape)
    classes = logits_shape[-1]
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= classes:
        fail(fn, target_range_message(low, high, classes))
    return y.astype(np.intp)


def as_temperature(fn: str, value: Any) -> float:
    """Validated temperature as a float."""
    return check_temperature(fn, value)


def logsumexp(x: Array, axis: int = -1, keepdims: bool = True) -> Array:
    """log Σ exp(x) along ``axis``, shifted by the maximum so no term overflows."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(x: Array) -> Array:
    """log σ(x) = x − LSE(x) along the last axis."""
    return x - logsumexp(x)


def kl_rows(log_p: Array, log_q: Array) -> Array:
    """KL(p ‖ q) = Σ_j p_j (log p_j − log q_j) over the last axis, from log-probabilities; 0·log 0 = 0."""
    p = np.exp(log_p)
    terms = np.where(p > 0.0, p * (log_p - log_q), 0.0)
    return np.sum(terms, axis=-1)


def reduce(fn: str, per_sample: Array, reduction: str) -> Array:
    """Apply "mean" (over all samples), "sum" or "none" (shape of the leading dimensions)."""
    reduction = check_reduction(fn, reduction)
    if reduction == "mean":
        return np.asarray(np.mean(per_sample))
    if reduction == "sum":
        return np.asarray(np.sum(per_sample))
    return per_sample


def grad_scale(fn: str, per_sample_shape: tuple[int, ...], reduction: str, grad_output: Any) -> Array:
    """∂(reduced loss)/∂(per-sample loss) times ``grad_output``, shaped to broadcast over the class axis."""
    reduction = check_reduction(fn, reduction)
    out_shape: tuple[int, ...] = () if reduction != "none" else per_sample_shape
    if grad_output is None:
        g = np.ones(out_shape)
    else:
        g = np.asarray(grad_output, dtype=np.float64)
        if g.shape != out_shape:
            fail(fn, f"`grad_output` must have the loss's shape {out_shape}, got {g.shape}")
    if reduction == "mean":
        g = np.broadcast_to(g / float(np.prod(per_sample_shape)), per_sample_shape)
    elif reduction == "sum":
        g = np.broadcast_to(g, per_sample_shape)
    return np.asarray(g)[..., None]


def take_target(x: Array, target: NDArray[np.intp]) -> Array:
    """x[..., target] per sample (the target class's entry of each row)."""
    return np.take_along_axis(x, target[..., None], axis=-1)[..., 0]


def target_mask(shape: tuple[int, ...], target: NDArray[np.intp]) -> NDArray[np.bool_]:
    """Boolean one-hot of the target class along the last axis."""
    return np.arange(shape[-1]) == target[..., None]


def nontarget_logsumexp(x: Array, target: NDArray[np.intp]) -> Array:
    """LSE over the classes other than the target, computed exactly (the target term is removed, not damped)."""
    return logsumexp(np.where(target_mask(x.shape, target), -np.inf, x))
