"""Torch building blocks: argument checks, the compute dtype, reductions and the non-target log-sum-exp."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import (
    check_pair,
    check_reduction,
    check_target_shape,
    check_temperature,
    fail,
    target_range_message,
)

_VALUE_CHECKS = True


def set_value_checks(enabled: bool) -> bool:
    """Turn the checks that read tensor values (target range, non-finite results) on or off; returns the old state.

    They cost one host synchronisation per call on CUDA; shape, dtype and device checks are always on, and
    value checks are skipped inside ``torch.compile`` graphs.
    """
    global _VALUE_CHECKS
    old, _VALUE_CHECKS = _VALUE_CHECKS, bool(enabled)
    return old


def value_checks_active() -> bool:
    """True when value checks run: enabled and not being traced by ``torch.compile``."""
    return _VALUE_CHECKS and not torch.compiler.is_compiling()


def check_logits(fn: str, name: str, x: object) -> Tensor:
    """A floating-point tensor."""
    if not isinstance(x, Tensor):
        fail(fn, f"`{name}` must be a torch.Tensor, got {type(x).__name__}", TypeError)
    t: Tensor = x  # type: ignore[assignment]
    if not t.is_floating_point():
        fail(fn, f"`{name}` must be a floating-point tensor, got dtype {t.dtype}", TypeError)
    return t


def check_tensor_pair(fn: str, student: object, teacher: object) -> tuple[Tensor, Tensor]:
    """Floating tensors of one shape on one device."""
    s = check_logits(fn, "student_logits", student)
    t = check_logits(fn, "teacher_logits", teacher)
    check_pair(fn, s.shape, t.shape)
    if s.device != t.device:
        fail(fn, f"`teacher_logits` is on {t.device} but `student_logits` is on {s.device}; they must share a device")
    return s, t


def check_target(fn: str, target: object, logits: Tensor) -> Tensor:
    """Integer class indices of the logits' leading shape, on the logits' device, each in [0, C)."""
    if not isinstance(target, Tensor):
        fail(fn, f"`target` must be a torch.Tensor of class indices, got {type(target).__name__}", TypeError)
    y: Tensor = target  # type: ignore[assignment]
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        fail(fn, f"`target` must hold integer class indices, got dtype {y.dtype}", TypeError)
    check_target_shape(fn, y.shape, logits.shape)
    if y.device != logits.device:
        fail(fn, f"`target` is on {y.device} but `student_logits` is on {logits.device}; they must share a device")
    C = logits.shape[-1]
    if value_checks_active() and bool(((y < 0) | (y >= C)).any()):
        fail(fn, target_range_message(int(y.min()), int(y.max()), C))
    return y.reshape(-1).long()


def compute_dtype(*xs: Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32: half-precision inputs are computed in float32."""
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


def tempered_rows(fn: str, student: object, teacher: object, temperature: object) -> tuple[Tensor, Tensor, float]:
    """Validated (M, C) rows s/T and t/T in the compute dtype; the teacher is detached."""
    s, t = check_tensor_pair(fn, student, teacher)
    T = check_temperature(fn, temperature)
    check_finite(fn, {"student_logits": s, "teacher_logits": t})
    dt = compute_dtype(s, t)
    C = s.shape[-1]
    return s.reshape(-1, C).to(dt) / T, t.detach().reshape(-1, C).to(dt) / T, T


def check_finite(fn: str, inputs: dict[str, Tensor]) -> None:
    """When value checks run, reject NaN or infinite entries, naming the argument (one host sync for all)."""
    if not value_checks_active():
        return
    tensors = [x for x in inputs.values() if x.is_floating_point()]
    # One read pass per input: a NaN or ±inf entry makes the sum non-finite. A finite sum proves every entry
    # finite; a non-finite one (which could also be an overflow of huge finite values) gets the exact check.
    sums = [x.detach().sum(dtype=torch.float64 if x.dtype == torch.float64 else torch.float32) for x in tensors]
    if not sums or bool(torch.isfinite(torch.stack(sums)).all()):
        return
    for name, x in inputs.items():
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            fail(fn, f"`{name}` must be finite; it holds {int((~torch.isfinite(x)).sum())} NaN or infinite values")
    # Only huge finite values overflowed the sums: nothing to reject.


def reduce(
    fn: str, rows: Tensor, reduction: str, lead_shape: torch.Size, inputs: dict[str, Tensor] | None = None
) -> Tensor:
    """Apply "mean" | "sum" | "none" (leading shape); if ``inputs`` are given and the result is not finite,
    name the non-finite input (a cheap post-hoc check for losses whose inputs were not checked up front)."""
    reduction = check_reduction(fn, reduction)
    if reduction == "mean":
        out = rows.mean()
    elif reduction == "sum":
        out = rows.sum()
    else:
        out = rows.reshape(lead_shape)
    if inputs and value_checks_active() and not bool(torch.isfinite(out).all()):
        check_finite(fn, inputs)
        fail(fn, "the loss is not finite although every input is; please report this with the inputs")
    return out


def nontarget_logsumexp(x: Tensor, mask: Tensor) -> Tensor:
    """LSE over the non-target classes of each row, exactly: the target entry is −∞, not a large negative constant."""
    return torch.logsumexp(x.masked_fill(mask, float("-inf")), dim=-1)


def target_mask(y: Tensor, C: int) -> Tensor:
    """(M, C) boolean one-hot of the target classes."""
    return torch.arange(C, device=y.device) == y[:, None]
