"""Properties of DeiT distillation: deit_soft_loss, deit_hard_loss, deit_loss, deit_predict (Touvron et al. 2021)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from .. import reference
from ._assert import assert_close, assert_finite
from ._helpers import assert_agrees, check_agreement, softmax
from ._impl import Implementation
from .strategies import Case, cases, grad_outputs
from .tolerances import GRAD_FLOOR, magnitude, tolerance

LOSSES = ("deit_soft_loss", "deit_hard_loss", "deit_loss")
DISTILLATIONS = ("hard", "soft", "none")
NORMALIZATIONS = ("batch", "numel")
#: The hard loss and the class head have no temperature: their logits are drawn at scale T = 1.
UNIT_T = st.just(1.0)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64)
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def _dist_head(impl: Implementation, case: Case) -> np.ndarray:
    """A second head's logits, of the student's shape and scale but different from it."""
    rng = np.random.default_rng(case.classes * 31 + case.samples)
    perm = rng.permutation(case.classes)
    return impl.round(0.75 * case.student[..., perm])


def _per_sample(impl: Implementation, fn: str, *arrays: np.ndarray, **kw) -> np.ndarray:
    """The per-sample losses of a batch-mean loss: ``fn`` evaluated on each sample alone, shape (...)."""
    lead = arrays[0].shape[:-1]
    flat = [a.reshape(-1, a.shape[-1]) if a.ndim == len(lead) + 1 else a.reshape(-1) for a in arrays]
    out = [impl.value(fn, *(a[i : i + 1] for a in flat), **kw) for i in range(int(np.prod(lead)))]
    return np.asarray(out, dtype=np.float64).reshape(lead)


@pytest.mark.kdref(kind="agreement", functions=("deit_soft_loss",))
@given(data=st.data(), alpha=st.sampled_from([0.0, 0.1, 0.5, 1.0]), norm=st.sampled_from(NORMALIZATIONS))
def test_deit_soft_loss_agrees_with_reference(
    impl: Implementation, data: st.DataObject, alpha: float, norm: str
) -> None:
    """deit_soft_loss values and student gradients equal kdref.reference's for every α and normalisation."""
    impl.require("deit_soft_loss")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    check_agreement(
        impl,
        "deit_soft_loss",
        case,
        value_weight=1.0 + T * T,
        grad_weight=1.0 + T,
        reductions=(None,),
        alpha=alpha,
        tau=T,
        kl_normalization=norm,
    )


@pytest.mark.kdref(kind="agreement", functions=("deit_hard_loss",))
@given(data=st.data())
def test_deit_hard_loss_agrees_with_reference(impl: Implementation, data: st.DataObject) -> None:
    """deit_hard_loss values and student gradients equal kdref.reference's (ties included)."""
    impl.require("deit_hard_loss")
    case = data.draw(cases(impl, temperature=UNIT_T), label="case")
    check_agreement(impl, "deit_hard_loss", case, value_weight=1.0, grad_weight=1.0, reductions=(None,))


@pytest.mark.kdref(kind="agreement", functions=("deit_loss",))
@given(
    data=st.data(),
    distillation=st.sampled_from(DISTILLATIONS),
    alpha=st.sampled_from([0.0, 0.5, 1.0]),
    norm=st.sampled_from(NORMALIZATIONS),
)
def test_deit_loss_agrees_with_reference(
    impl: Implementation, data: st.DataObject, distillation: str, alpha: float, norm: str
) -> None:
    """deit_loss values and the gradients wrt both heads equal kdref.reference's (every mode)."""
    impl.require("deit_loss")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    dist = _dist_head(impl, case)
    kw = {"distillation": distillation, "alpha": alpha, "tau": T, "kl_normalization": norm}
    args = (case.student, dist, case.teacher, case.target)
    go = grad_outputs(case, "mean")
    value, (g_cls, g_dist) = impl.value_and_grad("deit_loss", *args, grad_output=go, wrt=(0, 1), **kw)
    e_cls, e_dist = reference.deit_loss_grad(*args, grad_output=go, **kw)
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, dist, case.teacher, temperature=min(T, 1.0))
    w = 1.0 + T * T
    assert_agrees(
        impl,
        "deit_loss",
        args,
        kw,
        value,
        reference.deit_loss(*args, **kw),
        rtol=tol.rtol(tol.value_rtol, mag),
        atol=tol.value_atol * mag * w,
        what=f"deit_loss({kw}) value",
    )
    for got, expected, head in ((g_cls, e_cls, "cls_logits"), (g_dist, e_dist, "dist_logits")):
        assert_close(
            got,
            expected,
            rtol=tol.rtol(tol.grad_rtol, mag),
            atol=tol.grad_atol * mag * (1.0 + T) * float(go) / case.samples + GRAD_FLOOR[impl.dtype],
            what=f"deit_loss({kw}) gradient wrt {head}",
        )


@pytest.mark.kdref(kind="agreement", functions=("deit_predict",))
@given(data=st.data(), fusion=st.sampled_from(["logit_mean", "softmax_sum"]))
def test_deit_predict_agrees_with_reference(impl: Implementation, data: st.DataObject, fusion: str) -> None:
    """deit_predict equals kdref.reference's wherever the fused scores' top two are apart by more than rounding."""
    impl.require("deit_predict")
    case = data.draw(cases(impl, regimes=("tame", "wide")), label="case")
    got = impl.value("deit_predict", case.student, case.teacher, fusion=fusion)
    expected = reference.deit_predict(case.student, case.teacher, fusion=fusion)
    scores = np.sort(reference.deit_fusion_scores(case.student, case.teacher, fusion=fusion), -1)
    gap = scores[..., -1] - scores[..., -2]
    size = np.abs(scores).max(-1) if fusion == "logit_mean" else 2.0
    clear = gap > 8 * tolerance(impl.dtype).eps * size
    note(f"gap = {gap}")
    assert np.array_equal(got[clear], expected[clear]), f"{fusion}: {got} vs reference {expected}"


@pytest.mark.kdref(kind="law", functions=("deit_hard_loss",))
@given(data=st.data())
def test_hard_distillation_is_ce_with_the_two_hot_target(impl: Implementation, data: st.DataObject) -> None:
    """deit_hard_loss = mean CE(σ(s), ½e_y + ½e_{argmax t}); = plain CE when the teacher agrees with y (T2, 16)."""
    impl.require("deit_hard_loss")
    case = data.draw(cases(impl, temperature=UNIT_T), label="case")
    C = case.classes
    y_t = np.argmax(case.teacher, -1)
    two_hot = 0.5 * (np.arange(C) == case.target[..., None]) + 0.5 * (np.arange(C) == y_t[..., None])
    expected = np.mean(-(two_hot * _log_softmax(case.student)).sum(-1))
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher)
    value = impl.value("deit_hard_loss", case.student, case.teacher, case.target)
    assert_close(value, expected, rtol=tol.rtol(tol.value_rtol, mag), atol=2 * tol.value_atol * mag, what="two-hot CE")
    agreeing = impl.round(np.where(np.arange(C) == case.target[..., None], 1.0, 0.0))
    plain = np.mean(-np.take_along_axis(_log_softmax(case.student), case.target[..., None], -1))
    value = impl.value("deit_hard_loss", case.student, agreeing, case.target)
    assert_close(value, plain, rtol=tol.rtol(tol.value_rtol, mag), atol=2 * tol.value_atol * mag, what="y_t = y")


@pytest.mark.kdref(kind="law", functions=("deit_soft_loss", "kd_loss"))
@given(data=st.data())
def test_soft_term_is_kd_loss(impl: Implementation, data: st.DataObject) -> None:
    """deit_soft_loss(α = 1) = kd_loss(temperature = τ) with "batch", and exactly that / C with "numel" (T6, 18)."""
    impl.require("deit_soft_loss", "kd_loss")
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    args = (case.student, case.teacher, case.target)
    batch = impl.value("deit_soft_loss", *args, alpha=1.0, tau=T, kl_normalization="batch")
    numel = impl.value("deit_soft_loss", *args, alpha=1.0, tau=T, kl_normalization="numel")
    kd = impl.value("kd_loss", case.student, case.teacher, temperature=T, reduction="mean")
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=T)
    assert_close(batch, kd, rtol=tol.rtol(tol.value_rtol, mag), atol=tol.value_atol * mag * T * T, what="vs kd_loss")
    # The normalisations differ by the constant factor C, up to a few roundings of the product.
    assert_close(numel * case.classes, batch, rtol=16 * tol.eps, atol=0.0, what='"numel" × C vs "batch"')


@pytest.mark.kdref(kind="law", functions=LOSSES)
@given(data=st.data())
def test_alpha_zero_is_plain_cross_entropy(impl: Implementation, data: st.DataObject) -> None:
    """α = 0 gives mean CE(σ(s), y) for deit_soft_loss and CE on the class head for every deit_loss mode."""
    case = data.draw(cases(impl, temperature=UNIT_T), label="case")
    ce = np.mean(-np.take_along_axis(_log_softmax(case.student), case.target[..., None], -1))
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher)
    check = {"rtol": tol.rtol(tol.value_rtol, mag), "atol": 2 * tol.value_atol * mag}
    if impl.provides("deit_soft_loss"):
        v = impl.value("deit_soft_loss", case.student, case.teacher, case.target, alpha=0.0, tau=2.0)
        assert_close(v, ce, what="deit_soft_loss(α = 0) vs CE", **check)
    if impl.provides("deit_loss"):
        dist = _dist_head(impl, case)
        for mode in DISTILLATIONS:
            alpha = 0.7 if mode == "none" else 0.0
            v = impl.value("deit_loss", case.student, dist, case.teacher, case.target, distillation=mode, alpha=alpha)
            assert_close(v, ce, what=f"deit_loss({mode}, α = {alpha}) vs CE", **check)


@pytest.mark.kdref(kind="law", functions=LOSSES)
@given(data=st.data(), c_s=st.floats(-30, 30), c_t=st.floats(-30, 30))
def test_invariant_to_per_row_logit_shift(impl: Implementation, data: st.DataObject, c_s: float, c_t: float) -> None:
    """Adding a constant to a row's logits (student/head or teacher) changes no DeiT loss (T3)."""
    case = data.draw(cases(impl, regimes=("tame", "wide"), large_classes=False), label="case")
    T = case.temperature
    shift_s = impl.round(case.student + c_s * T) - case.student
    shift_t = impl.round(case.teacher + c_t * T) - case.teacher
    exact = np.all(shift_s == shift_s[..., :1], -1) & np.all(shift_t == shift_t[..., :1], -1)
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student + shift_s, case.teacher + shift_t, temperature=min(T, 1.0))
    moved = (case.student + shift_s, case.teacher + shift_t, case.target)
    kw = {"alpha": 0.5, "tau": T}
    for fn, args, args2, keywords in (
        ("deit_soft_loss", (case.student, case.teacher, case.target), moved, kw),
        ("deit_hard_loss", (case.student, case.teacher, case.target), moved, {}),
        ("deit_loss", (case.student, case.student, case.teacher, case.target), (moved[0], *moved), kw),
    ):
        if not impl.provides(fn):
            continue
        for extra in ({"distillation": "soft"}, {"distillation": "hard"}) if fn == "deit_loss" else ({},):
            a = _per_sample(impl, fn, *args, **keywords, **extra)
            b = _per_sample(impl, fn, *args2, **keywords, **extra)
            assert_close(
                b[exact],
                a[exact],
                rtol=4 * tol.value_rtol,
                atol=4 * tol.value_atol * mag * (1.0 + T * T),
                what=f"{fn}{extra} after a per-row logit shift",
            )


@pytest.mark.kdref(kind="law", functions=LOSSES)
@given(data=st.data(), distillation=st.sampled_from(DISTILLATIONS))
def test_gradients_sum_to_zero_over_classes(impl: Implementation, data: st.DataObject, distillation: str) -> None:
    """Σ_j ∂L/∂s_j = 0 per sample for the soft and hard losses and for both heads of deit_loss."""
    case = data.draw(cases(impl), label="case")
    T = case.temperature
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student, case.teacher, temperature=min(T, 1.0))
    grads = []
    if impl.provides("deit_soft_loss"):
        kw = {"alpha": 0.5, "tau": T}
        grads.append(("deit_soft_loss", impl.value_and_grad("deit_soft_loss", *_args(case), **kw)[1]))
    if impl.provides("deit_hard_loss"):
        grads.append(("deit_hard_loss", impl.value_and_grad("deit_hard_loss", *_args(case))[1]))
    if impl.provides("deit_loss"):
        args = (case.student, _dist_head(impl, case), case.teacher, case.target)
        _, pair = impl.value_and_grad("deit_loss", *args, wrt=(0, 1), distillation=distillation, tau=T)
        grads += [("deit_loss cls", pair[0]), ("deit_loss dist", pair[1])]
    for name, grad in grads:
        rounding = tol.grad_rtol * np.abs(grad).sum(-1)
        bound = rounding + tol.grad_atol * mag * (1.0 + T) * case.classes / case.samples
        assert np.all(np.abs(grad.sum(-1)) <= bound), f"{name}: gradient rows sum to {grad.sum(-1)}"


def _args(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return case.student, case.teacher, case.target


@pytest.mark.kdref(kind="robustness", functions=LOSSES)
@given(data=st.data(), distillation=st.sampled_from(DISTILLATIONS), norm=st.sampled_from(NORMALIZATIONS))
def test_finite_at_extreme_logits(impl: Implementation, data: st.DataObject, distillation: str, norm: str) -> None:
    """Values and gradients of every DeiT loss stay finite for |z|/τ up to 1e4."""
    case = data.draw(cases(impl, regimes=("extreme",)), label="case")
    T = case.temperature
    for fn, args, kw in (
        ("deit_soft_loss", _args(case), {"tau": T, "kl_normalization": norm}),
        ("deit_hard_loss", _args(case), {}),
        (
            "deit_loss",
            (case.student, _dist_head(impl, case), case.teacher, case.target),
            {"tau": T, "kl_normalization": norm, "distillation": distillation},
        ),
    ):
        if not impl.provides(fn):
            continue
        value, grad = impl.value_and_grad(fn, *args, **kw)
        assert_finite(value, what=f"{fn} value")
        assert_finite(grad, what=f"{fn} gradient")


@pytest.mark.kdref(kind="robustness", functions=LOSSES)
@given(data=st.data(), distillation=st.sampled_from(["hard", "soft"]))
def test_teacher_gets_no_gradient(impl: Implementation, data: st.DataObject, distillation: str) -> None:
    """A teacher that requires grad receives none (or zeros) from any DeiT loss."""
    case = data.draw(cases(impl, regimes=("tame",), large_classes=False), label="case")
    for fn, args, kw in (
        ("deit_soft_loss", _args(case), {"alpha": 0.5}),
        ("deit_hard_loss", _args(case), {}),
        ("deit_loss", (case.student, case.student, case.teacher, case.target), {"distillation": distillation}),
    ):
        if not impl.provides(fn):
            continue
        g = impl.teacher_grad(fn, *args, **kw)
        assert g is None or np.all(g == 0.0), f"{fn}: teacher gradient {g}"


@pytest.mark.kdref(kind="law", functions=("deit_hard_loss", "deit_loss", "deit_predict"))
@given(i=st.integers(0, 5), j=st.integers(0, 5), top=st.floats(-5, 5))
def test_argmax_ties_go_to_the_lowest_index(impl: Implementation, i: int, j: int, top: float) -> None:
    """A tie in the teacher's maximum (or in the fused scores) is resolved to the lowest class index."""
    lo, hi = min(i, j), max(i, j)
    t = np.zeros((1, 6))
    t[0, [lo, hi]] = 1.0
    t = impl.round(t * 2.0 + top)
    s = impl.round(np.arange(6.0)[None, ::-1] * 0.5)  # the student differs at lo and hi: a wrong tie-break shows
    y = np.array([(hi + 1) % 6])
    tol = tolerance(impl.dtype)
    expected = 0.5 * (-_log_softmax(s)[0, y[0]]) + 0.5 * (-_log_softmax(s)[0, lo])
    if impl.provides("deit_hard_loss"):
        v = impl.value("deit_hard_loss", s, t, y)
        assert_close(v, expected, rtol=tol.value_rtol, atol=10 * tol.value_atol, what=f"tie at {lo}, {hi}")
    if impl.provides("deit_loss"):
        v = impl.value("deit_loss", s, s, t, y, alpha=1.0)
        assert_close(v, -_log_softmax(s)[0, lo], rtol=tol.value_rtol, atol=10 * tol.value_atol, what="deit_loss tie")
    if impl.provides("deit_predict"):
        for fusion in ("logit_mean", "softmax_sum"):
            assert impl.value("deit_predict", t, t, fusion=fusion)[0] == lo, f"{fusion} tie at {lo}, {hi}"


@pytest.mark.kdref(kind="law", functions=("deit_predict",))
def test_late_fusion_is_not_logit_averaging(impl: Implementation) -> None:
    """argmax(σ(a) + σ(b)) ≠ argmax(a + b) in general: a = (−1.36, 2.89, 0.33), b = (−1.60, −2.08, 0.82) (T4, 17)."""
    impl.require("deit_predict")
    a = impl.round(np.array([[-1.36, 2.89, 0.33]]))
    b = impl.round(np.array([[-1.60, -2.08, 0.82]]))
    assert impl.value("deit_predict", a, b, fusion="logit_mean")[0] == 2
    assert impl.value("deit_predict", a, b, fusion="softmax_sum")[0] == 1


@pytest.mark.kdref(kind="law", functions=("deit_predict",))
@given(data=st.data())
def test_fusions_agree_for_two_classes_and_equal_heads(impl: Implementation, data: st.DataObject) -> None:
    """The two fusions pick the same class when C = 2 (σ(x) + σ(y) > 1 ⇔ x + y > 0) or when both heads are equal."""
    impl.require("deit_predict")
    case = data.draw(cases(impl, min_classes=2, max_classes=2, large_classes=False, regimes=("tame",)), label="c")
    a, b = case.student, case.teacher
    margin = np.abs((a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]))
    fused = softmax(a) + softmax(b)  # σ saturates: a clear logit margin can still be a rounding-level score gap
    clear = (margin > 1e-3 * (1.0 + np.abs(a).max() + np.abs(b).max())) & (np.abs(fused[..., 1] - fused[..., 0]) > 1e-3)
    mean = impl.value("deit_predict", a, b, fusion="logit_mean")
    soft = impl.value("deit_predict", a, b, fusion="softmax_sum")
    assert np.array_equal(mean[clear], soft[clear]), f"C = 2: {mean} vs {soft}"
    wide = data.draw(cases(impl, regimes=("tame", "wide")), label="wide")
    same_a = impl.value("deit_predict", wide.student, wide.student, fusion="logit_mean")
    same_s = impl.value("deit_predict", wide.student, wide.student, fusion="softmax_sum")
    top2 = np.sort(softmax(wide.student), -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-3
    assert np.array_equal(same_a[clear], same_s[clear]), f"equal heads: {same_a} vs {same_s}"
