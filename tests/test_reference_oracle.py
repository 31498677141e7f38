"""The float64 reference tier against the 50-digit mpmath oracle (values and gradients), as SciPy checks its
special functions against mpmath: the reference's own rounding error is all that may remain."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kdref import reference as R
from kdref.conformance import NumpyImplementation
from kdref.conformance._assert import assert_close
from kdref.conformance.strategies import cases
from kdref.conformance.tolerances import ORACLE, magnitude
from kdref.symbolic import dkd as SD
from kdref.symbolic import hinton as SH

IMPL = NumpyImplementation("kdref.reference", R)
SMALL = cases(IMPL, max_classes=6, large_classes=False)

# (function, oracle module, needs target, extra keywords, value weight in units of T)
FUNCTIONS = [
    ("kd_loss", SH, False, {}, 2),
    ("soft_cross_entropy", SH, False, {}, 0),
    ("hinton_loss", SH, True, {"lam": 0.3}, 2),
    ("tckd", SD, True, {}, 0),
    ("nckd", SD, True, {}, 0),
    ("dkd_loss", SD, True, {"alpha": 1.0, "beta": 8.0}, 2),
]


@pytest.mark.parametrize(("fn", "oracle", "needs_target", "kw", "power"), FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]))
def test_reference_matches_oracle(fn, oracle, needs_target, kw, power, data, reduction) -> None:
    case = data.draw(SMALL, label="case")
    T = case.temperature
    args = (case.student, case.teacher, case.target) if needs_target else (case.student, case.teacher)
    mag = magnitude(case.student, case.teacher, temperature=min(T, 1.0))
    w = max(T, 1.0) ** power * (8.0 if fn == "dkd_loss" else 1.0)
    ours = getattr(R, fn)(*args, temperature=T, reduction=reduction, **kw)
    exact = getattr(oracle, fn)(*args, temperature=T, reduction=reduction, **kw)
    assert_close(
        ours,
        exact,
        rtol=ORACLE.rtol(ORACLE.value_rtol, mag),
        atol=ORACLE.value_atol * mag * w,
        what=f"reference {fn} vs the mpmath oracle",
    )
    grad = getattr(R, fn + "_grad")(*args, temperature=T, reduction=reduction, **kw)
    exact_grad = getattr(oracle, fn + "_grad")(*args, temperature=T, reduction=reduction, **kw)
    assert_close(
        grad,
        exact_grad,
        rtol=ORACLE.rtol(ORACLE.grad_rtol, mag),
        atol=ORACLE.grad_atol * mag * w * (1 + 1 / T),
        what=f"reference ∂{fn}/∂s vs the mpmath oracle",
    )


def test_oracle_detects_a_wrong_reference() -> None:
    """The comparison is sharp: a reference off by one part in 1e9 fails it."""
    s, t = np.array([[1.0, -2.0, 0.5]]), np.array([[0.3, 0.1, -1.0]])
    exact = SH.kd_loss(s, t, temperature=2.0)
    with pytest.raises(AssertionError):
        assert_close(
            R.kd_loss(s, t, temperature=2.0) * (1 + 1e-9),
            exact,
            rtol=ORACLE.value_rtol,
            atol=ORACLE.value_atol,
            what="perturbed",
        )


@given(data=st.data())
def test_reference_matches_scipy(data) -> None:
    """kd_loss = T²·Σ rel_entr(p, q) and soft CE = −Σ p·log_softmax(s/T), with SciPy's own pieces."""
    from scipy.special import log_softmax, rel_entr, softmax

    case = data.draw(cases(IMPL, regimes=("tame", "wide")), label="case")
    T = case.temperature
    p, q = softmax(case.teacher / T, axis=-1), softmax(case.student / T, axis=-1)
    mag = magnitude(case.student, case.teacher, temperature=T)
    kd = R.kd_loss(case.student, case.teacher, temperature=T, reduction="none")
    # rel_entr(p, q) is inf where q underflows to 0 while p > 0; those rows are out of SciPy's reach.
    ok = np.all(np.isfinite(rel_entr(p, q)), -1)
    assert_close(kd[ok], T * T * rel_entr(p, q).sum(-1)[ok], rtol=1e-9, atol=1e-11 * mag * T * T, what="vs rel_entr")
    sce = R.soft_cross_entropy(case.student, case.teacher, temperature=T, reduction="none")
    assert_close(
        sce,
        -(p * log_softmax(case.student / T, axis=-1)).sum(-1),
        rtol=1e-12,
        atol=1e-13 * mag,
        what="vs SciPy log_softmax",
    )
