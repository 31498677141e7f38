"""Argument checks shared by the NumPy and Torch tiers: each error names the function and the argument."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

REDUCTIONS = ("mean", "sum", "none")


def fail(fn: str, message: str, exc: type[Exception] = ValueError) -> None:
    """Raise ``exc`` with the message prefixed by the public function's name."""
    raise exc(f"{fn}: {message}")


def check_choice(fn: str, name: str, value: object, allowed: tuple[str, ...]) -> str:
    """A keyword that takes one of a few strings."""
    if not isinstance(value, str) or value not in allowed:
        fail(fn, f"`{name}` must be one of {allowed}, got {value!r}")
    return value  # type: ignore[return-value]


def check_reduction(fn: str, reduction: object) -> str:
    """``reduction`` must be one of "mean", "sum", "none"."""
    return check_choice(fn, "reduction", reduction, REDUCTIONS)


def check_real(
    fn: str, name: str, value: object, *, low: float | None = None, low_open: bool = False, high: float | None = None
) -> float:
    """A finite real scalar (not bool) within the given bounds; returned as a Python float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(fn, f"`{name}` must be a real number, got {type(value).__name__} {value!r}", TypeError)
    x = float(value)  # type: ignore[arg-type]
    if not math.isfinite(x):
        fail(fn, f"`{name}` must be finite, got {x!r}")
    if low is not None and (x <= low if low_open else x < low):
        fail(fn, f"`{name}` must be {'>' if low_open else '>='} {low}, got {x!r}")
    if high is not None and x > high:
        fail(fn, f"`{name}` must be <= {high}, got {x!r}")
    return x


def check_temperature(fn: str, value: object, name: str = "temperature") -> float:
    """A temperature is a finite real number > 0."""
    return check_real(fn, name, value, low=0.0, low_open=True)


def check_logits_shape(fn: str, name: str, shape: Sequence[int], *, min_classes: int = 2) -> None:
    """Logits are (N, C) or (..., C): at least two dimensions, C >= ``min_classes``, at least one sample."""
    if len(shape) < 2:
        fail(fn, f"`{name}` must have shape (N, C) or (..., C) with at least 2 dimensions, got shape {tuple(shape)}")
    if shape[-1] < min_classes:
        fail(fn, f"`{name}` must have at least {min_classes} classes in its last dimension, got shape {tuple(shape)}")
    if math.prod(shape[:-1]) == 0:
        fail(fn, f"`{name}` must hold at least one sample, got shape {tuple(shape)}")


def check_pair(
    fn: str,
    s_shape: Sequence[int],
    t_shape: Sequence[int],
    s_name: str = "student_logits",
    t_name: str = "teacher_logits",
    *,
    min_classes: int = 2,
) -> None:
    """Student and teacher logits must both be valid and have exactly the same shape (no broadcasting)."""
    check_logits_shape(fn, s_name, s_shape, min_classes=min_classes)
    check_logits_shape(fn, t_name, t_shape, min_classes=min_classes)
    if tuple(s_shape) != tuple(t_shape):
        fail(
            fn,
            f"`{t_name}` has shape {tuple(t_shape)} but `{s_name}` has shape {tuple(s_shape)}; "
            "they must match exactly (nothing is broadcast)",
        )


def check_target_shape(
    fn: str, target_shape: Sequence[int], logits_shape: Sequence[int], logits_name: str = "student_logits"
) -> None:
    """Integer class indices with the logits' leading shape: (N,) for (N, C), (...) for (..., C)."""
    if tuple(target_shape) != tuple(logits_shape[:-1]):
        fail(
            fn,
            f"`target` must have shape {tuple(logits_shape[:-1])} (the leading dimensions of "
            f"`{logits_name}` {tuple(logits_shape)}), got {tuple(target_shape)}",
        )


def target_range_message(low: int, high: int, classes: int) -> str:
    """The error text for a target outside [0, C)."""
    return f"`target` values must lie in [0, {classes - 1}] (C = {classes}), got values in [{low}, {high}]"


def check_feature_pair(
    fn: str,
    s_shape: Sequence[int],
    t_shape: Sequence[int],
    s_name: str = "projected_student_features",
    t_name: str = "teacher_features",
) -> None:
    """Feature tensors (B, D) or (B, C, H, W) (any rank ≥ 2), non-empty, of exactly the same shape (no broadcasting)."""
    for name, shape in ((s_name, s_shape), (t_name, t_shape)):
        if len(shape) < 2:
            fail(fn, f"`{name}` must have shape (B, D) or (B, C, H, W) (at least 2 dimensions), got {tuple(shape)}")
        if math.prod(shape) == 0:
            fail(fn, f"`{name}` must hold at least one element, got shape {tuple(shape)}")
    if tuple(s_shape) != tuple(t_shape):
        fail(
            fn,
            f"`{t_name}` has shape {tuple(t_shape)} but `{s_name}` has shape {tuple(s_shape)}; "
            "they must match exactly (nothing is broadcast; align spatial sizes first)",
        )
