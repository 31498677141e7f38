"""Shared steps of the properties: agreement with kdref.reference, and float64 softmax for laws."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import note

from .. import reference
from ._assert import assert_close
from ._contract import CONTRACT
from ._impl import Implementation
from .strategies import Case, grad_outputs
from .tolerances import GRAD_FLOOR, magnitude, tolerance

REDUCTIONS = ("none", "mean", "sum")


def softmax(x: np.ndarray, T: float = 1.0) -> np.ndarray:
    """σ(x/T) in float64 along the last axis."""
    z = np.asarray(x, dtype=np.float64) / T
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def args_of(fn: str, case: Case) -> tuple[np.ndarray, ...]:
    """The positional arguments ``fn`` takes, from a drawn case."""
    pick = {"student_logits": case.student, "teacher_logits": case.teacher, "target": case.target}
    return tuple(pick[name] for name in CONTRACT[fn].args)


def check_agreement(
    impl: Implementation,
    fn: str,
    case: Case,
    *,
    value_weight: float,
    grad_weight: float,
    reductions: tuple[str | None, ...] = REDUCTIONS,
    **keywords: Any,
) -> None:
    """Values (every reduction) and student gradients (cotangent ≠ 1) of ``fn`` equal kdref.reference's.

    ``value_weight`` and ``grad_weight`` give the loss's scale per unit of log-probability error (T² for a
    T²-weighted loss, T for its gradient, 1/T for a gradient without T²), which sets the absolute tolerance.
    ``reductions=(None,)`` is for a function without a ``reduction`` keyword that returns the mean over samples.
    """
    note(f"case = {case!r}")
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=case.temperature)
    args = args_of(fn, case)
    for reduction in reductions:
        kw = dict(keywords) if reduction is None else {"reduction": reduction, **keywords}
        expected = np.asarray(getattr(reference, fn)(*args, **kw))
        per_sample = 1.0 if reduction not in ("mean", None) else 1.0 / case.samples
        go = grad_outputs(case, "mean" if reduction is None else reduction)
        value, grad = impl.value_and_grad(fn, *args, grad_output=go, **kw)
        assert_close(
            value,
            expected,
            rtol=tol.rtol(tol.value_rtol, mag),
            atol=tol.value_atol * mag * value_weight,
            what=f"{fn}(reduction={reduction!r}) value vs kdref.reference",
        )
        expected_grad = getattr(reference, fn + "_grad")(*args, grad_output=go, **kw)
        assert_close(
            grad,
            expected_grad,
            rtol=tol.rtol(tol.grad_rtol, mag),
            atol=tol.grad_atol * mag * grad_weight * per_sample * float(np.max(go)) + GRAD_FLOOR[impl.dtype],
            what=f"{fn}(reduction={reduction!r}) gradient wrt student_logits vs kdref.reference",
        )
