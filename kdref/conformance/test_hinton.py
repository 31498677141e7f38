"""Properties of Hinton KD: kd_loss, soft_cross_entropy, hinton_loss (Hinton, Vinyals, Dean 2015)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from ._assert import assert_close, assert_finite, assert_proportional
from ._helpers import check_agreement, softmax
from ._impl import Implementation
from .strategies import Case, cases, temperatures
from .tolerances import magnitude, tolerance


def _entropy(p: np.ndarray) -> np.ndarray:
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


@pytest.mark.kdref(kind="agreement", functions=("kd_loss",))
@given(data=st.data())
def test_kd_loss_agrees_with_reference(impl: Implementation, data: st.DataObject) -> None:
    """kd_loss values and gradients equal kdref.reference's in every reduction."""
    impl.require("kd_loss")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    check_agreement(impl, "kd_loss", case, value_weight=T * T, grad_weight=T, temperature=T)


@pytest.mark.kdref(kind="agreement", functions=("soft_cross_entropy",))
@given(data=st.data())
def test_soft_cross_entropy_agrees_with_reference(impl: Implementation, data: st.DataObject) -> None:
    """soft_cross_entropy values and gradients equal kdref.reference's in every reduction."""
    impl.require("soft_cross_entropy")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    check_agreement(impl, "soft_cross_entropy", case, value_weight=1.0, grad_weight=1.0 / T, temperature=T)


@pytest.mark.kdref(kind="agreement", functions=("hinton_loss",))
@given(data=st.data(), lam=st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_hinton_loss_agrees_with_reference(impl: Implementation, data: st.DataObject, lam: float) -> None:
    """hinton_loss values and gradients equal kdref.reference's in every reduction and weight λ."""
    impl.require("hinton_loss")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    w = max(T, 1.0)
    check_agreement(
        impl, "hinton_loss", case, value_weight=w * w * (1.0 + 1.0 / T), grad_weight=w + 1.0 / T, temperature=T, lam=lam
    )


@pytest.mark.kdref(kind="agreement", functions=("kd_loss",))
@given(data=st.data())
def test_kd_gradient_is_T_times_q_minus_p(impl: Implementation, data: st.DataObject) -> None:
    """∂kd_loss/∂s = T·(σ(s/T) − σ(t/T))/N under "mean" (Hinton Eq. 2 times T²)."""
    impl.require("kd_loss")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    _, grad = impl.value_and_grad("kd_loss", case.student, case.teacher, temperature=T, reduction="mean")
    expected = T * (softmax(case.student, T) - softmax(case.teacher, T)) / case.samples
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    assert_close(
        grad,
        expected,
        rtol=tol.rtol(tol.grad_rtol, mag),
        atol=tol.grad_atol * mag * T / case.samples + 1e-7 * (impl.dtype == "float16"),
        what="∂kd_loss/∂s vs T(q − p)/N",
    )


@pytest.mark.kdref(kind="law", functions=("kd_loss", "soft_cross_entropy"))
@given(data=st.data())
def test_soft_cross_entropy_is_kl_plus_teacher_entropy(impl: Implementation, data: st.DataObject) -> None:
    """soft_cross_entropy − H(σ(t/T)) ∝ kd_loss per sample: soft CE = KL + teacher entropy (identity H3)."""
    impl.require("kd_loss", "soft_cross_entropy")
    case = data.draw(cases(impl, min_samples=3), label="case")
    T = case.temperature
    ce = impl.value("soft_cross_entropy", case.student, case.teacher, temperature=T, reduction="none")
    kd = impl.value("kd_loss", case.student, case.teacher, temperature=T, reduction="none")
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    assert_proportional(
        ce - _entropy(softmax(case.teacher, T)),
        kd,
        rtol=tol.rtol(tol.value_rtol, mag),
        atol=3 * tol.value_atol * mag,
        what="soft CE − H(teacher) vs kd_loss",
    )


@pytest.mark.kdref(kind="law", functions=("kd_loss", "soft_cross_entropy", "hinton_loss"))
@given(data=st.data(), c_s=st.floats(-30, 30), c_t=st.floats(-30, 30))
def test_invariant_to_per_row_logit_shift(impl: Implementation, data: st.DataObject, c_s: float, c_t: float) -> None:
    """Adding a constant to every logit of a row (student or teacher) changes no softmax loss (H7)."""
    case = data.draw(cases(impl, regimes=("tame", "wide")), label="case")
    T = case.temperature
    shift_s = impl.round(case.student + c_s * T) - case.student
    shift_t = impl.round(case.teacher + c_t * T) - case.teacher
    # Only rows whose every entry moved by the same amount after rounding are an exact shift.
    exact = np.all(shift_s == shift_s[..., :1], -1) & np.all(shift_t == shift_t[..., :1], -1)
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student + shift_s, case.teacher + shift_t, temperature=T)
    for fn, extra, w in (
        ("kd_loss", (), T * T),
        ("soft_cross_entropy", (), 1.0),
        ("hinton_loss", (case.target,), max(T, 1.0) ** 2 + 1.0),
    ):
        if not impl.provides(fn):
            continue
        a = impl.value(fn, case.student, case.teacher, *extra, temperature=T, reduction="none")
        b = impl.value(fn, case.student + shift_s, case.teacher + shift_t, *extra, temperature=T, reduction="none")
        assert_close(
            b[exact],
            a[exact],
            rtol=4 * tol.rtol(tol.value_rtol, mag),
            atol=4 * tol.value_atol * mag * w,
            what=f"{fn} after a per-row logit shift",
        )


@pytest.mark.kdref(kind="law", functions=("kd_loss",))
@given(data=st.data())
def test_kd_is_nonnegative_and_zero_iff_distributions_match(impl: Implementation, data: st.DataObject) -> None:
    """kd_loss ≥ 0; kd_loss(s, s + c) = 0; kd_loss > 0 when σ(s/T) and σ(t/T) differ (Gibbs, H8)."""
    impl.require("kd_loss")
    case = data.draw(cases(impl, regimes=("tame", "wide")), label="case")
    T = case.temperature
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    kd = impl.value("kd_loss", case.student, case.teacher, temperature=T, reduction="none")
    assert np.all(kd >= -tol.value_atol * mag * T * T), f"negative KD: {kd}"
    same = impl.value("kd_loss", case.student, case.student, temperature=T, reduction="none")
    assert_close(same, np.zeros_like(same), rtol=0, atol=tol.value_atol * mag * T * T, what="kd_loss(s, s)")
    # Where the two distributions differ clearly (total variation > 1e-2, so KL ≥ 2·TV² ≥ 2e-4 by Pinsker, far above
    # the rounding error of these tame inputs), the loss must be positive whatever its normalisation.
    tv = 0.5 * np.abs(softmax(case.student, T) - softmax(case.teacher, T)).sum(-1)
    clear = tv > 1e-2
    assert np.all(kd[clear] > 0), f"KD not positive where σ(s/T) ≠ σ(t/T): {kd[clear]}"


@pytest.mark.kdref(kind="law", functions=("kd_loss", "soft_cross_entropy", "hinton_loss"))
@given(data=st.data())
def test_gradients_sum_to_zero_over_classes(impl: Implementation, data: st.DataObject) -> None:
    """Σ_j ∂L/∂s_j = 0 for every softmax loss: the gradient is orthogonal to a uniform shift (H2)."""
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    for fn, extra, w in (
        ("kd_loss", (), T),
        ("soft_cross_entropy", (), 1.0 / T),
        ("hinton_loss", (case.target,), T + 1.0),
    ):
        if not impl.provides(fn):
            continue
        _, grad = impl.value_and_grad(fn, case.student, case.teacher, *extra, temperature=T, reduction="sum")
        rounding = tol.grad_rtol * np.abs(grad).sum(-1)  # a half-precision gradient is rounded entry by entry
        assert np.all(np.abs(grad.sum(-1)) <= rounding + tol.grad_atol * mag * w * case.classes), (
            f"{fn}: gradient rows sum to {grad.sum(-1)}"
        )


@pytest.mark.kdref(kind="law", functions=("kd_loss",))
@given(data=st.data(), T=st.sampled_from([50.0, 200.0, 1000.0]))
def test_high_temperature_limit(impl: Implementation, data: st.DataObject, T: float) -> None:
    """T²·∂soft/∂z → ((z − z̄) − (v − v̄))/C as T → ∞, with an O(1/T) error (H4, exact limit of Hinton Eq. 4)."""
    impl.require("kd_loss")
    case = data.draw(cases(impl, regimes=("tame",), large_classes=False, temperature=st.just(1.0)), label="case")
    z, v = case.student * 3.0, case.teacher * 3.0  # logits of order 1..10, independent of T
    z, v = impl.round(z), impl.round(v)
    _, grad = impl.value_and_grad("kd_loss", z, v, temperature=T, reduction="sum")
    C = case.classes
    limit = ((z - z.mean(-1, keepdims=True)) - (v - v.mean(-1, keepdims=True))) / C
    # Any normalisation c·kd_loss keeps the law: compare grad/c with the limit, c the least-squares factor.
    c = float(np.vdot(grad, limit) / max(np.vdot(limit, limit), 1e-300))
    assert c > 0, f"∂kd_loss/∂s points away from the limit direction: {grad} vs {limit}"
    spread = float(np.max(np.abs(z)) + np.max(np.abs(v)))
    # Second-order term of the softmax expansion: |T(q − p) − limit| ≤ spread²/(C·T) for spread/T ≤ 1.
    tol = tolerance(impl.dtype)
    bound = spread**2 / (C * T) + tol.grad_atol * T * (1 + spread) * 8 + tol.grad_rtol * np.abs(limit)
    note(f"factor {c}, error {np.max(np.abs(grad / c - limit))} vs bound {np.max(bound)}")
    assert np.all(np.abs(grad / c - limit) <= bound), f"T·(q − p)/c is {grad / c}, the limit is {limit}"


@pytest.mark.kdref(kind="robustness", functions=("kd_loss", "soft_cross_entropy", "hinton_loss"))
@given(data=st.data())
def test_finite_at_extreme_logits(impl: Implementation, data: st.DataObject) -> None:
    """Values and gradients stay finite for |z|/T up to 1e4 (no log of a softmax, no overflow)."""
    case: Case = data.draw(cases(impl, regimes=("extreme",)), label="case")
    T = case.temperature
    for fn, extra in (("kd_loss", ()), ("soft_cross_entropy", ()), ("hinton_loss", (case.target,))):
        if not impl.provides(fn):
            continue
        value, grad = impl.value_and_grad(fn, case.student, case.teacher, *extra, temperature=T, reduction="mean")
        assert_finite(value, what=f"{fn} value")
        assert_finite(grad, what=f"{fn} gradient")


@pytest.mark.kdref(kind="law", functions=("kd_loss", "soft_cross_entropy", "hinton_loss"))
@given(data=st.data())
def test_teacher_receives_no_gradient(impl: Implementation, data: st.DataObject) -> None:
    """A teacher-logits tensor that requires grad gets none (or zeros): only the student is trained."""
    if impl.kind != "torch":
        pytest.skip("only meaningful for autograd implementations")
    case = data.draw(cases(impl, regimes=("tame",), large_classes=False), label="case")
    for fn, extra in (("kd_loss", ()), ("soft_cross_entropy", ()), ("hinton_loss", (case.target,))):
        if not impl.provides(fn):
            continue
        g = impl.teacher_grad(fn, case.student, case.teacher, *extra, temperature=case.temperature)
        assert g is None or not np.any(g), f"{fn} sent a gradient into teacher_logits: {g}"


@pytest.mark.kdref(kind="agreement", functions=("kd_loss", "soft_cross_entropy", "hinton_loss"))
def test_gradcheck_float64(impl: Implementation) -> None:
    """torch.autograd.gradcheck passes in float64 (autograd against finite differences)."""
    if impl.kind != "torch" or impl.dtype != "float64":
        pytest.skip("gradcheck runs on float64 autograd implementations")
    import torch

    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 5, dtype=torch.float64, generator=g).to(impl.device).requires_grad_()
    t = torch.randn(3, 5, dtype=torch.float64, generator=g).to(impl.device)
    y = torch.tensor([0, 4, 2], device=impl.device)
    for fn, extra in (("kd_loss", ()), ("soft_cross_entropy", ()), ("hinton_loss", (y,))):
        if impl.provides(fn):
            f = getattr(impl.namespace, fn)
            assert torch.autograd.gradcheck(lambda x, f=f, extra=extra: f(x, t, *extra, temperature=2.0), (s,))


@pytest.mark.kdref(kind="agreement", functions=("kd_loss",))
@given(T=temperatures())
def test_kd_of_a_confident_teacher_at_low_temperature(impl: Implementation, T: float) -> None:
    """A one-hot teacher (p_t underflows to exactly 1): kd_loss = −T²·log q_y, finite and exact."""
    impl.require("kd_loss")
    t = impl.round(np.array([[min(1e4 * T, impl.max_abs / 4), 0.0, 0.0, -1.0]]))
    s = impl.round(np.array([[0.5 * T, 1.0 * T, -2.0 * T, 0.0]]))
    kd = impl.value("kd_loss", s, t, temperature=T, reduction="none")
    log_q = s / T - np.log(np.sum(np.exp(s / T)))
    tol = tolerance(impl.dtype)
    assert_close(
        kd,
        -T * T * log_q[:, 0],
        rtol=tol.value_rtol,
        atol=tol.value_atol * T * T * 10,
        what="kd_loss of a one-hot teacher",
    )
