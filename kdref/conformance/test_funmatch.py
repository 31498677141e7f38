"""Properties of function matching: funmatch_loss (Beyer et al., CVPR 2022, "A good teacher is patient and consistent")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ._assert import assert_close, assert_finite
from ._helpers import check_agreement, softmax
from ._impl import Implementation
from .strategies import cases
from .tolerances import magnitude, tolerance


@pytest.mark.kdref(kind="agreement", functions=("funmatch_loss",))
@given(data=st.data())
def test_funmatch_loss_agrees_with_reference(impl: Implementation, data: st.DataObject) -> None:
    """funmatch_loss values and gradients equal kdref.reference's (a mean over samples, cotangent ≠ 1)."""
    impl.require("funmatch_loss")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    check_agreement(impl, "funmatch_loss", case, value_weight=T * T, grad_weight=T, reductions=(None,), temperature=T)


@pytest.mark.kdref(kind="law", functions=("funmatch_loss", "kd_loss"))
@given(data=st.data())
def test_funmatch_loss_is_kd_loss_mean(impl: Implementation, data: st.DataObject) -> None:
    """funmatch_loss(s, t, T) = kd_loss(s, t, T, reduction="mean"), values and gradients (big_vision kl = Hinton KD)."""
    impl.require("funmatch_loss", "kd_loss")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    fm, g_fm = impl.value_and_grad("funmatch_loss", case.student, case.teacher, temperature=T)
    kd, g_kd = impl.value_and_grad("kd_loss", case.student, case.teacher, temperature=T, reduction="mean")
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    assert_close(fm, kd, rtol=tol.rtol(tol.value_rtol, mag), atol=tol.value_atol * mag * T * T, what="funmatch vs KD")
    assert_close(
        g_fm,
        g_kd,
        rtol=tol.rtol(tol.grad_rtol, mag),
        atol=tol.grad_atol * mag * T / case.samples,
        what="∂funmatch vs ∂KD",
    )


@pytest.mark.kdref(kind="law", functions=("funmatch_loss",))
@given(data=st.data())
def test_funmatch_is_nonnegative_and_zero_iff_student_matches_teacher(
    impl: Implementation, data: st.DataObject
) -> None:
    """funmatch ≥ T²·mean 2·TV² ≥ 0 (Gibbs, Pinsker) and funmatch(s, s) = 0: the optimum is the teacher (B3)."""
    impl.require("funmatch_loss")
    case = data.draw(cases(impl, regimes=("tame", "wide")), label="case")
    T = case.temperature
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    fm = impl.value("funmatch_loss", case.student, case.teacher, temperature=T)
    same = impl.value("funmatch_loss", case.student, case.student, temperature=T)
    assert_close(same, np.zeros(()), rtol=0, atol=tol.value_atol * mag * T * T, what="funmatch(s, s)")
    tv = 0.5 * np.abs(softmax(case.student, T) - softmax(case.teacher, T)).sum(-1)
    pinsker = T * T * float(np.mean(2.0 * tv**2))
    assert fm >= 0.5 * pinsker - tol.value_atol * mag * T * T, f"funmatch {fm} below half Pinsker's bound {pinsker}"


@pytest.mark.kdref(kind="law", functions=("funmatch_loss",))
@given(data=st.data(), c_s=st.floats(-30, 30), c_t=st.floats(-30, 30))
def test_funmatch_invariant_to_per_row_logit_shift(
    impl: Implementation, data: st.DataObject, c_s: float, c_t: float
) -> None:
    """Adding a constant to every logit of a row (student or teacher) leaves funmatch_loss unchanged."""
    impl.require("funmatch_loss")
    case = data.draw(cases(impl, regimes=("tame", "wide")), label="case")
    T = case.temperature
    shift_s = impl.round(case.student + c_s * T) - case.student
    shift_t = impl.round(case.teacher + c_t * T) - case.teacher
    # Rows whose entries did not all move by the same amount after rounding are not an exact shift: drop them.
    exact = np.all(shift_s == shift_s[..., :1], -1) & np.all(shift_t == shift_t[..., :1], -1)
    if not np.any(exact):
        return
    s, t = case.student[exact], case.teacher[exact]
    a = impl.value("funmatch_loss", s, t, temperature=T)
    b = impl.value("funmatch_loss", s + shift_s[exact], t + shift_t[exact], temperature=T)
    tol = tolerance(impl.dtype)
    mag = magnitude(s + shift_s[exact], t + shift_t[exact], temperature=T)
    assert_close(b, a, rtol=4 * tol.value_rtol, atol=4 * tol.value_atol * mag * T * T, what="funmatch after a shift")


@pytest.mark.kdref(kind="law", functions=("funmatch_loss",))
@given(data=st.data())
def test_funmatch_gradient_rows_sum_to_zero(impl: Implementation, data: st.DataObject) -> None:
    """Σ_j ∂funmatch/∂s_j = 0 for every sample (the gradient T(q − p)/N is orthogonal to a uniform shift)."""
    impl.require("funmatch_loss")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    _, grad = impl.value_and_grad("funmatch_loss", case.student, case.teacher, temperature=T)
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    rounding = tol.grad_rtol * np.abs(grad).sum(-1)
    assert np.all(np.abs(grad.sum(-1)) <= rounding + tol.grad_atol * mag * T * case.classes / case.samples), (
        f"gradient rows sum to {grad.sum(-1)}"
    )


@pytest.mark.kdref(kind="robustness", functions=("funmatch_loss",))
@given(data=st.data())
def test_funmatch_finite_at_extreme_logits(impl: Implementation, data: st.DataObject) -> None:
    """funmatch_loss value and gradient stay finite for |z|/T up to 1e4 (log-sum-exp, no log of a softmax)."""
    impl.require("funmatch_loss")
    case = data.draw(cases(impl, regimes=("extreme",)), label="case")
    value, grad = impl.value_and_grad("funmatch_loss", case.student, case.teacher, temperature=case.temperature)
    assert_finite(value, what="funmatch_loss value")
    assert_finite(grad, what="funmatch_loss gradient")


@pytest.mark.kdref(kind="law", functions=("funmatch_loss",))
@given(data=st.data())
def test_funmatch_teacher_receives_no_gradient(impl: Implementation, data: st.DataObject) -> None:
    """A teacher-logits tensor that requires grad gets none (or zeros): the teacher is never trained."""
    if impl.kind != "torch":
        pytest.skip("only meaningful for autograd implementations")
    impl.require("funmatch_loss")
    case = data.draw(cases(impl, regimes=("tame",), large_classes=False), label="case")
    g = impl.teacher_grad("funmatch_loss", case.student, case.teacher, temperature=case.temperature)
    assert g is None or not np.any(g), f"funmatch_loss sent a gradient into teacher_logits: {g}"
