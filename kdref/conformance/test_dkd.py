"""Properties of Decoupled KD: tckd, nckd, dkd_loss (Zhao et al., CVPR 2022)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ._assert import assert_close, assert_finite, assert_proportional
from ._helpers import check_agreement, softmax
from ._impl import Implementation
from .strategies import cases, temperatures
from .tolerances import magnitude, tolerance

DKD_FUNCTIONS = ("tckd", "nckd", "dkd_loss")


def _p_target(logits: np.ndarray, target: np.ndarray, T: float) -> np.ndarray:
    return np.take_along_axis(softmax(logits, T), target[..., None], -1)[..., 0]


@pytest.mark.kdref(kind="agreement", functions=("tckd",))
@given(data=st.data())
def test_tckd_agrees_with_reference(impl: Implementation, data: st.DataObject) -> None:
    """tckd values and gradients equal kdref.reference's in every reduction."""
    impl.require("tckd")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    check_agreement(impl, "tckd", case, value_weight=1.0, grad_weight=1.0 / T, temperature=T)


@pytest.mark.kdref(kind="agreement", functions=("nckd",))
@given(data=st.data())
def test_nckd_agrees_with_reference(impl: Implementation, data: st.DataObject) -> None:
    """nckd values and gradients equal kdref.reference's in every reduction."""
    impl.require("nckd")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    check_agreement(impl, "nckd", case, value_weight=1.0, grad_weight=1.0 / T, temperature=T)


@pytest.mark.kdref(kind="agreement", functions=("dkd_loss",))
@given(data=st.data(), alpha=st.sampled_from([0.0, 1.0, 0.5]), beta=st.sampled_from([0.0, 1.0, 8.0]))
def test_dkd_loss_agrees_with_reference(impl: Implementation, data: st.DataObject, alpha: float, beta: float) -> None:
    """dkd_loss values and gradients equal kdref.reference's in every reduction and weighting."""
    impl.require("dkd_loss")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    w = max(alpha, beta, 1.0)
    check_agreement(
        impl, "dkd_loss", case, value_weight=w * T * T, grad_weight=w * T, alpha=alpha, beta=beta, temperature=T
    )


@pytest.mark.kdref(kind="law", functions=("kd_loss", "tckd", "nckd"))
@given(data=st.data())
def test_kd_decomposes_into_tckd_and_weighted_nckd(impl: Implementation, data: st.DataObject) -> None:
    """kd_loss ∝ TCKD + (1 − p_t^teacher)·NCKD per sample, exactly (Zhao et al. Eq. 6; K1; the factor is T²)."""
    impl.require("kd_loss", "tckd", "nckd")
    case = data.draw(cases(impl, min_samples=3), label="case")
    T = case.temperature
    args = (case.student, case.teacher, case.target)
    kd = impl.value("kd_loss", case.student, case.teacher, temperature=T, reduction="none")
    tc = impl.value("tckd", *args, temperature=T, reduction="none")
    nc = impl.value("nckd", *args, temperature=T, reduction="none")
    p_t = _p_target(case.teacher, case.target, T)
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    assert_proportional(
        kd,
        tc + (1.0 - p_t) * nc,
        rtol=4 * tol.rtol(tol.value_rtol, mag),
        atol=6 * tol.value_atol * mag * T * T,
        what="KD vs TCKD + (1 − p_t)·NCKD",
    )


@pytest.mark.kdref(kind="law", functions=("nckd",))
@given(data=st.data(), ds=st.floats(-20, 20), dt=st.floats(-20, 20))
def test_nckd_is_independent_of_the_target_logits(
    impl: Implementation, data: st.DataObject, ds: float, dt: float
) -> None:
    """Moving the student's or the teacher's target logit changes neither NCKD nor leaves it a gradient (K3)."""
    impl.require("nckd")
    case = data.draw(cases(impl, regimes=("tame", "wide")), label="case")
    T = case.temperature
    onehot = np.arange(case.classes) == case.target[..., None]
    s2 = impl.round(np.where(onehot, case.student + ds * T, case.student))
    t2 = impl.round(np.where(onehot, case.teacher + dt * T, case.teacher))
    a, grad = impl.value_and_grad("nckd", case.student, case.teacher, case.target, temperature=T, reduction="none")
    b = impl.value("nckd", s2, t2, case.target, temperature=T, reduction="none")
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    assert_close(
        b, a, rtol=tol.rtol(tol.value_rtol, mag), atol=tol.value_atol * mag, what="NCKD after moving target logits"
    )
    assert np.all(grad[onehot] == 0.0), f"∂NCKD/∂s_target should be exactly 0, got {grad[onehot]}"


@pytest.mark.kdref(kind="law", functions=("tckd",))
@given(data=st.data())
def test_tckd_depends_on_logits_only_through_p_target(impl: Implementation, data: st.DataObject) -> None:
    """Permuting the student's non-target logits (p_t unchanged) leaves TCKD unchanged (K3)."""
    impl.require("tckd")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    rng = np.random.default_rng(case.classes)
    s2 = case.student.copy().reshape(-1, case.classes)
    for row, y in zip(s2, case.target.reshape(-1)):
        rest = np.flatnonzero(np.arange(case.classes) != y)
        row[rest] = row[rng.permutation(rest)]
    s2 = s2.reshape(case.student.shape)
    a = impl.value("tckd", case.student, case.teacher, case.target, temperature=T, reduction="none")
    b = impl.value("tckd", s2, case.teacher, case.target, temperature=T, reduction="none")
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    assert_close(
        b, a, rtol=tol.rtol(tol.value_rtol, mag), atol=tol.value_atol * mag, what="TCKD after permuting non-targets"
    )


@pytest.mark.kdref(kind="law", functions=("kd_loss", "tckd", "nckd", "dkd_loss"))
@given(data=st.data())
def test_two_classes_make_nckd_vanish(impl: Implementation, data: st.DataObject) -> None:
    """C = 2: NCKD ≡ 0 exactly and DKD ∝ KD (= α·KD with the T² convention; K7)."""
    impl.require("kd_loss", "tckd", "nckd", "dkd_loss")
    case = data.draw(cases(impl, min_classes=2, max_classes=2, large_classes=False, min_samples=3), label="case")
    T = case.temperature
    args = (case.student, case.teacher, case.target)
    assert np.all(impl.value("nckd", *args, temperature=T, reduction="none") == 0.0), "NCKD ≠ 0 for C = 2"
    dkd = impl.value("dkd_loss", *args, alpha=0.7, beta=8.0, temperature=T, reduction="none")
    kd = impl.value("kd_loss", case.student, case.teacher, temperature=T, reduction="none")
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    assert_proportional(
        dkd,
        kd,
        rtol=4 * tol.rtol(tol.value_rtol, mag),
        atol=4 * tol.value_atol * mag * T * T,
        what="DKD vs KD at C = 2",
    )


@pytest.mark.kdref(kind="law", functions=("tckd", "nckd", "dkd_loss"))
@given(data=st.data(), alpha=st.floats(0, 4), beta=st.floats(0, 10))
def test_dkd_is_t2_times_weighted_tckd_and_nckd(
    impl: Implementation, data: st.DataObject, alpha: float, beta: float
) -> None:
    """dkd_loss ∝ α·TCKD + β·NCKD per sample (Eq. 7; the factor is T²); ≥ 0."""
    impl.require("tckd", "nckd", "dkd_loss")
    case = data.draw(cases(impl, min_samples=3), label="case")
    T = case.temperature
    args = (case.student, case.teacher, case.target)
    dkd = impl.value("dkd_loss", *args, alpha=alpha, beta=beta, temperature=T, reduction="none")
    tc = impl.value("tckd", *args, temperature=T, reduction="none")
    nc = impl.value("nckd", *args, temperature=T, reduction="none")
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    w = max(alpha, beta, 1.0)
    assert_proportional(
        dkd,
        alpha * tc + beta * nc,
        rtol=4 * tol.rtol(tol.value_rtol, mag),
        atol=4 * tol.value_atol * mag * T * T * w,
        what="DKD vs αTCKD + βNCKD",
    )
    assert np.all(dkd >= -tol.value_atol * mag * T * T * w), f"negative DKD {dkd}"


@pytest.mark.kdref(kind="law", functions=("dkd_loss",))
@given(data=st.data())
def test_dkd_is_zero_iff_distributions_match(impl: Implementation, data: st.DataObject) -> None:
    """DKD(s, s + c) = 0; DKD > 0 when the distributions differ, for α, β > 0 (K6)."""
    impl.require("dkd_loss")
    case = data.draw(cases(impl, regimes=("tame", "wide"), min_classes=3), label="case")
    T = case.temperature
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    same = impl.value(
        "dkd_loss", case.student, case.student, case.target, alpha=1.0, beta=1.0, temperature=T, reduction="none"
    )
    assert_close(same, np.zeros_like(same), rtol=0, atol=4 * tol.value_atol * mag * T * T, what="DKD(s, s)")
    differ = impl.value(
        "dkd_loss", case.student, case.teacher, case.target, alpha=1.0, beta=1.0, temperature=T, reduction="none"
    )
    tv = 0.5 * np.abs(softmax(case.student, T) - softmax(case.teacher, T)).sum(-1)
    clear = tv > 1e-2
    assert np.all(differ[clear] > 0), f"DKD not positive where p_s ≠ p_t: {differ}"


@pytest.mark.kdref(kind="law", functions=DKD_FUNCTIONS)
@given(data=st.data(), c_s=st.floats(-30, 30), c_t=st.floats(-30, 30))
def test_dkd_invariant_to_per_row_logit_shift(
    impl: Implementation, data: st.DataObject, c_s: float, c_t: float
) -> None:
    """Adding a constant to a row's logits (student or teacher) changes none of TCKD, NCKD, DKD (K8)."""
    case = data.draw(cases(impl, regimes=("tame", "wide")), label="case")
    T = case.temperature
    shift_s = impl.round(case.student + c_s * T) - case.student
    shift_t = impl.round(case.teacher + c_t * T) - case.teacher
    exact = np.all(shift_s == shift_s[..., :1], -1) & np.all(shift_t == shift_t[..., :1], -1)
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student + shift_s, case.teacher + shift_t, temperature=T)
    for fn, w in (("tckd", 1.0), ("nckd", 1.0), ("dkd_loss", 8.0 * T * T)):
        if not impl.provides(fn):
            continue
        a = impl.value(fn, case.student, case.teacher, case.target, temperature=T, reduction="none")
        b = impl.value(fn, case.student + shift_s, case.teacher + shift_t, case.target, temperature=T, reduction="none")
        assert_close(
            b[exact],
            a[exact],
            rtol=4 * tol.rtol(tol.value_rtol, mag),
            atol=4 * tol.value_atol * mag * w,
            what=f"{fn} after a per-row logit shift",
        )


@pytest.mark.kdref(kind="law", functions=DKD_FUNCTIONS)
@given(data=st.data())
def test_dkd_gradients_sum_to_zero_over_classes(impl: Implementation, data: st.DataObject) -> None:
    """Σ_j ∂L/∂s_j = 0 for TCKD, NCKD and DKD."""
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    for fn, w in (("tckd", 1.0 / T), ("nckd", 1.0 / T), ("dkd_loss", 8.0 * T)):
        if not impl.provides(fn):
            continue
        _, grad = impl.value_and_grad(fn, case.student, case.teacher, case.target, temperature=T, reduction="sum")
        rounding = tol.grad_rtol * np.abs(grad).sum(-1)
        assert np.all(np.abs(grad.sum(-1)) <= rounding + tol.grad_atol * mag * w * case.classes), (
            f"{fn}: gradient rows sum to {grad.sum(-1)}"
        )


@pytest.mark.kdref(kind="robustness", functions=DKD_FUNCTIONS)
@given(data=st.data())
def test_dkd_finite_at_extreme_logits(impl: Implementation, data: st.DataObject) -> None:
    """TCKD, NCKD, DKD values and gradients stay finite for |z|/T up to 1e4 (mdistiller's TCKD gives inf)."""
    case = data.draw(cases(impl, regimes=("extreme",)), label="case")
    for fn in DKD_FUNCTIONS:
        if not impl.provides(fn):
            continue
        value, grad = impl.value_and_grad(
            fn, case.student, case.teacher, case.target, temperature=case.temperature, reduction="mean"
        )
        assert_finite(value, what=f"{fn} value")
        assert_finite(grad, what=f"{fn} gradient")


@pytest.mark.kdref(kind="agreement", functions=DKD_FUNCTIONS)
@given(T=temperatures())
def test_dkd_of_a_one_hot_teacher(impl: Implementation, T: float) -> None:
    """A teacher with p_t = 1 exactly (low temperature): TCKD = −log q_t, NCKD is defined and finite."""
    impl.require("tckd", "nckd")
    big = min(1e4 * T, impl.max_abs / 4)
    t = impl.round(np.array([[big, 0.0, 1.0 * T, -1.0 * T], [0.0, big, 0.0, 0.0]]))
    s = impl.round(np.array([[0.5 * T, 1.0 * T, -2.0 * T, 0.0], [3.0 * T, 0.0, 0.0, 1.0 * T]]))
    y = np.array([0, 1])
    tol = tolerance(impl.dtype)
    tc = impl.value("tckd", s, t, y, temperature=T, reduction="none")
    log_q = np.log(np.take_along_axis(softmax(s, T), y[:, None], -1)[:, 0])
    assert_close(tc, -log_q, rtol=tol.value_rtol, atol=tol.value_atol * 10, what="TCKD of a one-hot teacher")
    from .. import reference

    nc = impl.value("nckd", s, t, y, temperature=T, reduction="none")
    assert_close(
        nc,
        reference.nckd(s, t, y, temperature=T, reduction="none"),
        rtol=tol.value_rtol,
        atol=tol.value_atol * 10,
        what="NCKD of a one-hot teacher",
    )


@pytest.mark.kdref(kind="agreement", functions=DKD_FUNCTIONS)
def test_dkd_gradcheck_float64(impl: Implementation) -> None:
    """torch.autograd.gradcheck passes in float64 for TCKD, NCKD and DKD."""
    if impl.kind != "torch" or impl.dtype != "float64":
        pytest.skip("gradcheck runs on float64 autograd implementations")
    import torch

    g = torch.Generator().manual_seed(1)
    s = torch.randn(4, 6, dtype=torch.float64, generator=g).to(impl.device).requires_grad_()
    t = torch.randn(4, 6, dtype=torch.float64, generator=g).to(impl.device)
    y = torch.tensor([0, 5, 2, 2], device=impl.device)
    for fn in DKD_FUNCTIONS:
        if impl.provides(fn):
            f = getattr(impl.namespace, fn)
            assert torch.autograd.gradcheck(lambda x, f=f: f(x, t, y, temperature=2.0), (s,))
