"""Closeness assertions that fail on NaN and report the worst points, not just "not close"."""

from __future__ import annotations

import numpy as np


def _fmt(x: np.ndarray) -> str:
    return np.array2string(np.asarray(x), precision=17, separator=", ", threshold=200, floatmode="maxprec")


def assert_close(actual: np.ndarray, expected: np.ndarray, *, rtol: float, atol: float, what: str) -> None:
    """|actual − expected| ≤ atol + rtol·|expected| elementwise; NaN or inf in either is a failure, shapes must match."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise AssertionError(f"{what}: shape {a.shape} differs from the expected {e.shape}")
    if not np.all(np.isfinite(e)):
        raise AssertionError(f"{what}: the expected value itself is not finite: {_fmt(e)}")
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[:5].tolist()
        raise AssertionError(f"{what}: not finite at {bad}; got {_fmt(a)}")
    err = np.abs(a - e)
    bound = atol + rtol * np.abs(e)
    if np.all(err <= bound):
        return
    excess = (err - bound).reshape(-1)
    worst = np.argsort(excess)[::-1][:5]
    lines = []
    for flat in worst:
        if excess[flat] <= 0:
            break
        idx = np.unravel_index(flat, a.shape) if a.shape else ()
        lines.append(
            f"  at {tuple(int(i) for i in idx)}: got {a.reshape(-1)[flat]!r}, expected "
            f"{e.reshape(-1)[flat]!r}, |diff| = {err.reshape(-1)[flat]:.3e} > {bound.reshape(-1)[flat]:.3e}"
        )
    raise AssertionError(
        f"{what}: {int(np.sum(err > bound))} of {err.size} entries out of tolerance "
        f"(rtol={rtol:.1e}, atol={atol:.1e}); worst:\n" + "\n".join(lines)
    )


def assert_finite(x: np.ndarray, *, what: str) -> None:
    """Every entry finite."""
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[:5].tolist()
        raise AssertionError(f"{what}: not finite at {bad} (first 5); got {_fmt(a)}")


def assert_proportional(actual: np.ndarray, expected: np.ndarray, *, rtol: float, atol: float, what: str) -> float:
    """actual = c·expected for one constant c > 0 (a law that holds whatever the normalisation); returns c.

    c is the least-squares ratio; a normalisation such as T², 1/C or a batch size changes c, not the law. Pass
    several samples (at least 3): with one sample any two positive numbers are proportional.
    """
    a = np.asarray(actual, dtype=np.float64).reshape(-1)
    e = np.asarray(expected, dtype=np.float64).reshape(-1)
    assert_finite(a, what=what)
    scale = float(np.dot(e, e))
    if scale == 0.0:
        assert_close(a, np.zeros_like(a), rtol=0.0, atol=atol, what=f"{what} (expected 0)")
        return 1.0
    c = float(np.dot(a, e) / scale)
    if not c > 0:
        raise AssertionError(f"{what}: the best factor c in actual = c·expected is {c:.6g}, not positive")
    assert_close(a, c * e, rtol=rtol, atol=atol * max(c, 1.0), what=f"{what} (up to the factor c = {c:.6g})")
    return c
