"""Shared steps of the properties: agreement with kdref.reference, and float64 softmax for laws."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import note

from .. import reference
from ._assert import assert_close
from ._contract import CONTRACT
from ._impl import Implementation
from .diagnosis import Candidate, diagnose, explain
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
        value = impl.value(fn, *args, **kw)
        try:
            assert_close(
                value,
                expected,
                rtol=tol.rtol(tol.value_rtol, mag),
                atol=tol.value_atol * mag * value_weight,
                what=f"{fn}(reduction={reduction!r}) value vs kdref.reference",
            )
        except AssertionError as failure:
            found = diagnose_disagreement(impl, fn, (args, kw, value))
            raise AssertionError(f"{failure}\n{explain(fn, found)}" if found else str(failure)) from None
        if not impl.has_grad(fn):
            continue
        _, grad = impl.value_and_grad(fn, *args, grad_output=go, **kw)
        expected_grad = getattr(reference, fn + "_grad")(*args, grad_output=go, **kw)
        assert_close(
            grad,
            expected_grad,
            rtol=tol.rtol(tol.grad_rtol, mag),
            atol=tol.grad_atol * mag * grad_weight * per_sample * float(np.max(go)) + GRAD_FLOOR[impl.dtype],
            what=f"{fn}(reduction={reduction!r}) gradient wrt student_logits vs kdref.reference",
        )


#: Probe inputs for diagnosis: (samples, classes, temperature), chosen so that the usual factors (T², C, N)
#: take different values and cannot be confused with one another or with 1.
PROBES = ((3, 5, 1.5), (4, 7, 2.5), (2, 3, 4.0), (5, 11, 0.7))


def diagnose_disagreement(
    impl: Implementation, fn: str, failing: tuple[tuple[np.ndarray, ...], dict[str, Any], np.ndarray]
) -> list[Candidate]:
    """Which known deviation explains the failing input and every probe input (see :mod:`.diagnosis`)."""
    observations = [failing]
    kw0 = failing[1]
    t_key = next((k for k in ("temperature", "tau") if k in CONTRACT[fn].keywords), None)
    rng = np.random.default_rng(12345)
    for n, c, T in PROBES:
        probe_args = tuple(
            rng.integers(0, c, n) if name == "target" else impl.round(rng.standard_normal((n, c)) * 2 * T)
            for name in CONTRACT[fn].args
        )
        kw = dict(kw0)
        if t_key is not None:
            kw[t_key] = T
        try:
            observations.append((probe_args, kw, impl.value(fn, *probe_args, **kw)))
        except Exception:  # an implementation that cannot take a probe is diagnosed on what it can take
            continue
    return diagnose(fn, observations)


def assert_agrees(
    impl: Implementation,
    fn: str,
    args: tuple[np.ndarray, ...],
    kw: dict[str, Any],
    value: np.ndarray,
    expected: np.ndarray,
    *,
    rtol: float,
    atol: float,
    what: str,
) -> None:
    """assert_close, and on failure name the known deviation that explains it, if one does."""
    try:
        assert_close(value, expected, rtol=rtol, atol=atol, what=what)
    except AssertionError as failure:
        found = diagnose_disagreement(impl, fn, (args, kw, value))
        raise AssertionError(f"{failure}\n{explain(fn, found)}" if found else str(failure)) from None
