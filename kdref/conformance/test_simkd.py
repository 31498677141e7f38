"""Properties of SimKD's feature loss: simkd_loss (Chen et al., CVPR 2022, "the reused teacher classifier")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from .. import reference
from ._assert import assert_close
from ._helpers import assert_agrees
from ._impl import Implementation
from .tolerances import GRAD_FLOOR, tolerance

FN = "simkd_loss"


@dataclass
class FeaturePair:
    """Projected student features and teacher features of one shape, already rounded to the dtype under test."""

    projected: np.ndarray
    teacher: np.ndarray

    def __repr__(self) -> str:
        with np.printoptions(precision=17, floatmode="maxprec", threshold=100000, linewidth=100000):
            return f"FeaturePair(projected=np.{self.projected!r}, teacher=np.{self.teacher!r})"


@st.composite
def feature_pairs(draw: st.DrawFn, impl: Implementation) -> FeaturePair:
    """(B, D) or (B, C, H, W) features, post-ReLU-like or signed, at scales from 1e-2 to 1e2."""
    shape = draw(
        st.one_of(
            st.tuples(st.integers(1, 5), st.integers(1, 16)),
            st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4)),
        ),
        label="shape",
    )
    scale = draw(st.sampled_from([1e-2, 1.0, 1e2]), label="scale")
    relu = draw(st.booleans(), label="post-ReLU")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    p, t = (rng.standard_normal(shape) * scale for _ in range(2))
    if relu:
        p, t = np.maximum(p, 0.0), np.maximum(t, 0.0)
    return FeaturePair(impl.round(p), impl.round(t))


@pytest.mark.kdref(kind="agreement", functions=(FN,))
@given(data=st.data(), go=st.floats(0.5, 2.0))
def test_simkd_loss_agrees_with_reference(impl: Implementation, data: st.DataObject, go: float) -> None:
    """simkd_loss values and gradients (cotangent ≠ 1) equal kdref.reference's."""
    impl.require(FN)
    case = data.draw(feature_pairs(impl), label="features")
    note(f"case = {case!r}")
    tol = tolerance(impl.dtype)
    expected = reference.simkd_loss(case.projected, case.teacher)
    value, grad = impl.value_and_grad(FN, case.projected, case.teacher, grad_output=np.asarray(go))
    scale = float(np.max(np.abs(case.projected - case.teacher))) ** 2
    assert_agrees(
        impl,
        FN,
        (case.projected, case.teacher),
        {},
        value,
        expected,
        rtol=tol.value_rtol,
        atol=tol.value_atol * 1e-6 * scale,
        what="simkd_loss value",
    )
    expected_grad = reference.simkd_loss_grad(case.projected, case.teacher, grad_output=np.asarray(go))
    assert_close(
        grad,
        expected_grad,
        rtol=tol.grad_rtol,
        atol=tol.grad_atol * 1e-6 * float(np.max(np.abs(expected_grad))) + GRAD_FLOOR[impl.dtype],
        what="simkd_loss gradient wrt projected_student_features",
    )


@pytest.mark.kdref(kind="law", functions=(FN,))
@given(data=st.data())
def test_simkd_loss_is_sum_of_squares_over_numel(impl: Implementation, data: st.DataObject) -> None:
    """simkd_loss·(B·C·H·W) = ‖P(f_s) − f_t‖²_F: the official MSE is the paper's squared norm over a constant (S4)."""
    impl.require(FN)
    case = data.draw(feature_pairs(impl), label="features")
    value = impl.value(FN, case.projected, case.teacher)
    sum_sq = float(np.sum((case.projected - case.teacher) ** 2))
    tol = tolerance(impl.dtype)
    assert_close(value * case.projected.size, sum_sq, rtol=4 * tol.value_rtol, atol=0.0, what="MSE·numel vs ‖d‖²")


@pytest.mark.kdref(kind="law", functions=(FN,))
@given(data=st.data())
def test_simkd_loss_is_zero_iff_features_are_aligned(impl: Implementation, data: st.DataObject) -> None:
    """simkd_loss(f, f) = 0 exactly; simkd_loss(p, t) ≥ max (p − t)²/numel > 0 when p ≠ t (S4)."""
    impl.require(FN)
    case = data.draw(feature_pairs(impl), label="features")
    assert impl.value(FN, case.teacher, case.teacher) == 0.0, "simkd_loss(f, f) ≠ 0"
    d2 = (case.projected - case.teacher) ** 2
    value = impl.value(FN, case.projected, case.teacher)
    tol = tolerance(impl.dtype)
    assert value >= 0.0, f"negative simkd_loss {value}"
    assert value >= (1 - 4 * tol.value_rtol) * float(np.max(d2)) / d2.size, f"{value} below max d²/numel"
    if np.any(d2 > 0):
        assert value > 0.0, "simkd_loss is 0 for features that differ"


@pytest.mark.kdref(kind="law", functions=(FN,))
@given(data=st.data())
def test_simkd_teacher_receives_no_gradient(impl: Implementation, data: st.DataObject) -> None:
    """A teacher-features tensor that requires grad gets none (or zeros): only the projector/student is trained."""
    if impl.kind != "torch":
        pytest.skip("only meaningful for autograd implementations")
    impl.require(FN)
    case = data.draw(feature_pairs(impl), label="features")
    g = impl.teacher_grad(FN, case.projected, case.teacher)
    assert g is None or not np.any(g), f"simkd_loss sent a gradient into teacher_features: {g}"
