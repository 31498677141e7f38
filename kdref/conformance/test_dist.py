"""Properties of DIST: pearson, inter_class_relation, intra_class_relation, dist_loss (Huang et al., NeurIPS 2022)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from .. import reference
from ._assert import assert_close, assert_finite
from ._helpers import check_agreement, softmax
from ._impl import Implementation
from .strategies import Case, cases
from .tolerances import magnitude, tolerance

RELATIONS = ("inter_class_relation", "intra_class_relation", "dist_loss")
MODES = ("exact", "product_add", "norm_clamp")
TAUS = st.sampled_from([0.5, 1.0, 2.0, 4.0])


def _kappa(x: np.ndarray, axis: int = -1) -> float:
    """Condition of Pearson on x: max|x|/max|x − x̄| over the vectors along ``axis`` (∞ for a constant one)."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    spread = np.max(np.abs(x - x.mean(-1, keepdims=True)), -1)
    big = np.max(np.abs(x), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(big == 0, 1.0, big / spread)
    return float(np.max(k))


def _relation_kappa(case: Case, T: float) -> float:
    """Condition of the rows (inter) and class columns (intra) of both softmax matrices."""
    C = case.classes
    ys, yt = softmax(case.student, T).reshape(-1, C), softmax(case.teacher, T).reshape(-1, C)
    return max(_kappa(ys), _kappa(yt), _kappa(ys, 0), _kappa(yt, 0))


@st.composite
def relation_cases(draw: st.DrawFn, impl: Implementation, *, matrix: bool = True, **kw) -> Case:
    """A drawn case as (N, C) logits (intra needs the batch axis), with a small jitter so no two rows tie exactly."""
    regimes = ("tame", "wide") if impl.dtype == "float64" else ("tame",)
    kw.setdefault("large_classes", False)  # C = 100 and 1000 only where a test asks for them (time)
    case = draw(cases(impl, regimes=kw.pop("regimes", regimes), **kw), label="case")
    C = case.classes
    rng = np.random.default_rng(case.samples * 31 + C)
    s = case.student.reshape(-1, C) if matrix else case.student
    t = case.teacher.reshape(-1, C) if matrix else case.teacher
    T = case.temperature
    s = impl.round(s + rng.standard_normal(s.shape) * 0.05 * T)
    t = impl.round(t + rng.standard_normal(t.shape) * 0.05 * T)
    y = np.zeros(s.shape[:-1], dtype=np.int64)
    return Case(s, t, y, T, case.regime)


@st.composite
def pearson_arrays(draw: st.DrawFn, impl: Implementation) -> tuple[np.ndarray, np.ndarray, int]:
    """Generic (not probability) arrays of rank 1–3, a reduction axis, scales 1e-3..1e3 and offsets."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=2), label="lead"))
    n = draw(st.integers(2, 40), label="length")
    axis = draw(st.integers(0, len(shape)), label="axis")
    shape = (*shape[:axis], n, *shape[axis:])
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3] if impl.dtype != "float16" else [1e-1, 1.0, 1e2]), label="scale")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale + rng.standard_normal() * scale
    y = 0.5 * x + rng.standard_normal(shape) * scale * draw(st.sampled_from([0.1, 1.0, 10.0]), label="noise")
    dim = axis - len(shape) if draw(st.booleans(), label="negative dim") else axis
    return impl.round(x), impl.round(y), dim


def _grad_scale(kappa: float, tau: float, w: float) -> float:
    """|∂ρ/∂u| ≤ 2/‖ū‖ and the softmax's Jacobian adds ≤ 2·max u/τ: a gradient entry is at most 4κ/τ per unit
    weight, and rounding the centred vector perturbs it by a relative eps·κ: the scale of the gradient's error."""
    return 4.0 * kappa * kappa * w / tau


def _weight(fn: str, beta: float, gamma: float, T: float) -> float:
    return T * T * (beta + gamma) if fn == "dist_loss" else 1.0


@pytest.mark.kdref(kind="agreement", functions=("pearson",))
@given(data=st.data(), mode=st.sampled_from(MODES))
def test_pearson_agrees_with_reference(impl: Implementation, data: st.DataObject, mode: str) -> None:
    """pearson values and gradients (wrt x, cotangent ≠ 1) equal kdref.reference's along any dim, in every ε mode."""
    impl.require("pearson")
    x, y, dim = data.draw(pearson_arrays(impl), label="arrays")
    tol = tolerance(impl.dtype)
    kappa = max(_kappa(x, dim), _kappa(y, dim))
    note(f"kappa = {kappa}")
    expected = reference.pearson(x, y, dim=dim, eps_mode=mode)
    go = np.random.default_rng(x.size).uniform(0.5, 2.0, expected.shape)
    value, grad = impl.value_and_grad("pearson", x, y, grad_output=go, dim=dim, eps_mode=mode)
    n = x.shape[dim]
    assert_close(value, expected, rtol=0, atol=16 * tol.eps * kappa * n, what="pearson value vs kdref.reference")
    expected_grad = reference.pearson_grad(x, y, dim=dim, eps_mode=mode, grad_output=go)
    # |∂ρ/∂x| ≤ 2/‖x − x̄‖ (exact mode; the ε modes are smaller or, below ε, at most 2/ε).
    xs = np.moveaxis(x, dim, -1)
    norms = np.linalg.norm(xs - xs.mean(-1, keepdims=True), axis=-1)
    scale = 2.0 * float(np.max(go)) / max(float(np.min(norms)), 1e-8)
    assert_close(
        grad,
        expected_grad,
        rtol=tol.grad_rtol,
        atol=16 * tol.eps * kappa * n * scale,
        what="pearson gradient vs kdref.reference",
    )


@pytest.mark.kdref(kind="agreement", functions=RELATIONS)
@given(data=st.data(), mode=st.sampled_from(MODES), fn=st.sampled_from(RELATIONS), tau=TAUS)
def test_relations_agree_with_reference(
    impl: Implementation, data: st.DataObject, mode: str, fn: str, tau: float
) -> None:
    """inter, intra and dist_loss values and student gradients equal kdref.reference's in every ε mode."""
    impl.require(fn)
    case = data.draw(relation_cases(impl, temperature=st.just(tau), large_classes=True), label="case")
    kw = {"tau": tau, "eps_mode": mode} | ({"beta": 1.5, "gamma": 3.0} if fn == "dist_loss" else {})
    w = _weight(fn, 1.5, 3.0, tau)
    kappa = _relation_kappa(case, tau)
    note(f"kappa = {kappa}")
    check_agreement(
        impl,
        fn,
        case,
        value_weight=w * kappa,
        grad_weight=_grad_scale(kappa, tau, w),
        reductions=(None,),
        **kw,
    )


@pytest.mark.kdref(kind="law", functions=("pearson",))
@given(
    data=st.data(),
    m1=st.sampled_from([-3.0, -0.25, 0.5, 2.0]),
    m2=st.sampled_from([-2.0, 0.125, 4.0]),
    n1=st.floats(-5, 5),
    n2=st.floats(-5, 5),
)
def test_pearson_affine_invariance(
    impl: Implementation, data: st.DataObject, m1: float, m2: float, n1: float, n2: float
) -> None:
    """ρ(m1·x + n1, m2·y + n2) = sign(m1·m2)·ρ(x, y) (P1): invariant for m1·m2 > 0, sign-flipped for m1·m2 < 0."""
    impl.require("pearson")
    x, y, dim = data.draw(pearson_arrays(impl), label="arrays")
    x2, y2 = impl.round(m1 * x + n1 * np.std(x)), impl.round(m2 * y + n2 * np.std(y))
    a = impl.value("pearson", x, y, dim=dim)
    b = impl.value("pearson", x2, y2, dim=dim)
    tol = tolerance(impl.dtype)
    # The transformed inputs are rounded again, so the tolerance follows the conditioning of both pairs.
    kappa = max(_kappa(x, dim), _kappa(y, dim), _kappa(x2, dim), _kappa(y2, dim))
    k = 8 * tol.eps * kappa * x.shape[dim] if impl.dtype == "float64" else 64 * 2.0**-8 * kappa
    assert_close(b, np.sign(m1 * m2) * a, rtol=0, atol=k, what="ρ after an affine map of each argument")


@pytest.mark.kdref(kind="law", functions=("pearson", *RELATIONS))
@given(data=st.data(), tau=TAUS)
def test_symmetry(impl: Implementation, data: st.DataObject, tau: float) -> None:
    """ρ(x, y) = ρ(y, x) and each relation term is symmetric in student and teacher (P2)."""
    tol = tolerance(impl.dtype)
    if impl.provides("pearson"):
        x, y, dim = data.draw(pearson_arrays(impl), label="arrays")
        assert_close(
            impl.value("pearson", y, x, dim=dim),
            impl.value("pearson", x, y, dim=dim),
            rtol=0,
            atol=4 * tol.eps,
            what="ρ(y, x) vs ρ(x, y)",
        )
    case = data.draw(relation_cases(impl, temperature=st.just(tau)), label="case")
    for fn in RELATIONS:
        if impl.provides(fn):
            assert_close(
                impl.value(fn, case.teacher, case.student, tau=tau),
                impl.value(fn, case.student, case.teacher, tau=tau),
                rtol=0,
                atol=16 * tol.eps * _weight(fn, 2.0, 2.0, tau),
                what=f"{fn} with student and teacher swapped",
            )


@pytest.mark.kdref(kind="law", functions=("pearson",))
@given(data=st.data())
def test_one_minus_rho_is_half_squared_distance_of_standardised(impl: Implementation, data: st.DataObject) -> None:
    """1 − ρ = ½‖x̂ − ŷ‖² with x̂ = (x − x̄)/‖x − x̄‖, hence ρ ∈ [−1, 1] and d ∈ [0, 2] (P4)."""
    impl.require("pearson")
    x, y, dim = data.draw(pearson_arrays(impl), label="arrays")
    rho = impl.value("pearson", x, y, dim=dim)
    xs, ys = np.moveaxis(x, dim, -1), np.moveaxis(y, dim, -1)
    xc, yc = xs - xs.mean(-1, keepdims=True), ys - ys.mean(-1, keepdims=True)
    xh = xc / np.linalg.norm(xc, axis=-1, keepdims=True)
    yh = yc / np.linalg.norm(yc, axis=-1, keepdims=True)
    tol = tolerance(impl.dtype)
    kappa = max(_kappa(x, dim), _kappa(y, dim))
    assert_close(
        1.0 - rho,
        0.5 * np.sum((xh - yh) ** 2, -1),
        rtol=0,
        atol=16 * tol.eps * kappa * x.shape[dim],
        what="1 − ρ vs ½‖x̂ − ŷ‖²",
    )
    assert np.all(np.abs(rho) <= 1.0 + 4 * tol.eps), f"|ρ| > 1: {rho}"


@pytest.mark.kdref(kind="law", functions=("inter_class_relation", "intra_class_relation"))
@given(data=st.data(), tau=TAUS)
def test_inter_is_separable_over_the_batch_intra_is_not(impl: Implementation, data: st.DataObject, tau: float) -> None:
    """inter(batch) = size-weighted mean of inter(shards); intra is not separable (a fixed counterexample)."""
    impl.require("inter_class_relation", "intra_class_relation")
    case = data.draw(relation_cases(impl, temperature=st.just(tau)), label="case")
    s, t = case.student, case.teacher
    if s.shape[0] >= 2:
        k = s.shape[0] // 2
        whole = impl.value("inter_class_relation", s, t, tau=tau)
        parts = [impl.value("inter_class_relation", s[i], t[i], tau=tau) for i in (slice(0, k), slice(k, None))]
        combined = (k * parts[0] + (s.shape[0] - k) * parts[1]) / s.shape[0]
        tol = tolerance(impl.dtype)
        assert_close(combined, whole, rtol=0, atol=16 * tol.eps, what="inter of the batch vs mean of its shards")
    # Two shards of two rows: each shard's columns correlate perfectly (ρ = ±1), the batch's do not.
    s4 = impl.round(np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5], [1.0, -1.0, 0.0], [-0.5, 0.5, 2.0]]))
    t4 = impl.round(np.array([[1.0, 0.5, -1.0], [0.5, 0.0, 1.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.5]]))
    whole = float(impl.value("intra_class_relation", s4, t4))
    halves = [float(impl.value("intra_class_relation", s4[i : i + 2], t4[i : i + 2])) for i in (0, 2)]
    assert abs(whole - np.mean(halves)) > 0.1, f"intra looks separable: {whole} vs shards {halves}"


@pytest.mark.kdref(kind="law", functions=RELATIONS)
@given(data=st.data(), mode=st.sampled_from(MODES), tau=TAUS)
def test_zero_when_student_equals_teacher(impl: Implementation, data: st.DataObject, mode: str, tau: float) -> None:
    """inter = intra = dist_loss = 0 when the student's logits equal the teacher's (up to a per-row shift)."""
    case = data.draw(relation_cases(impl, temperature=st.just(tau)), label="case")
    if case.samples < 2:
        case = Case(np.tile(case.student, (2, 1)) + np.array([[0.0], [1.0]]), case.teacher, case.target, tau)
        case.student[1] = impl.round(case.student[1] * 0.5)
    s = case.student
    tol = tolerance(impl.dtype)
    # The ε modes shrink ρ by ‖ū‖‖v̄‖/(‖ū‖‖v̄‖ + ε): allow that much for tiny columns.
    C = case.classes
    y = softmax(s, tau).reshape(-1, C)
    small = min(
        float(np.min(np.sum((y - y.mean(0)) ** 2, 0))),
        float(np.min(np.sum((y - y.mean(1, keepdims=True)) ** 2, 1))),
    )
    slack = 0.0 if mode == "exact" else 2e-8 / max(small, 1e-300)
    for fn in RELATIONS:
        if impl.provides(fn):
            v = impl.value(fn, s, s, tau=tau, eps_mode=mode)
            w = _weight(fn, 2.0, 2.0, tau)
            assert_close(v, 0.0 * v, rtol=0, atol=w * (64 * tol.eps + slack), what=f"{fn}(s, s)")


@pytest.mark.kdref(kind="law", functions=("inter_class_relation",))
@given(data=st.data(), k=st.sampled_from([0.1, 0.3, 0.7]))
def test_shrunk_student_has_rho_one_but_positive_kl(impl: Implementation, data: st.DataObject, k: float) -> None:
    """p_s = 1/C + k(p_t − 1/C) gives inter = 0 (ρ = 1) although KL(p_t ‖ p_s) > 0: relation ≠ exact match (P5)."""
    impl.require("inter_class_relation")
    case = data.draw(relation_cases(impl, temperature=st.just(1.0), min_classes=3), label="case")
    p = softmax(case.teacher, 1.0)
    C = case.classes
    q = 1.0 / C + k * (p - 1.0 / C)
    s = np.log(q)
    kl = np.sum(p * (np.log(p) - np.log(q)), -1)
    assert np.all(kl > 0), kl
    # Rounding s to the dtype perturbs q by a relative eps; ρ moves by about that, times the row's conditioning.
    s_r = impl.round(s)
    tol = tolerance(impl.dtype)
    kappa = max(_kappa(np.exp(s_r - s_r.max(-1, keepdims=True)) / 1.0), _kappa(p))
    rounding = 0.0 if impl.dtype == "float64" else float(np.max(np.abs(s_r - s)))
    v = impl.value("inter_class_relation", s_r, case.teacher)
    assert_close(v, 0.0 * v, rtol=0, atol=64 * tol.eps * kappa + 4 * kappa * rounding, what="inter of a shrunk student")


@pytest.mark.kdref(kind="law", functions=("intra_class_relation", "inter_class_relation", "dist_loss"))
@given(data=st.data(), mode=st.sampled_from(MODES), tau=TAUS)
def test_degenerate_sizes(impl: Implementation, data: st.DataObject, mode: str, tau: float) -> None:
    """B = 1: intra = 1 exactly with zero gradient; C = 2: every inter row's ρ is ±1 (or 0), inter ∈ {0, 1, 2}/B."""
    case = data.draw(relation_cases(impl, temperature=st.just(tau)), label="case")
    if impl.provides("intra_class_relation"):
        v, g = impl.value_and_grad("intra_class_relation", case.student[:1], case.teacher[:1], tau=tau, eps_mode=mode)
        assert float(v) == 1.0, f"intra of one sample is {v}, not 1"
        assert not np.any(g), f"intra of one sample has gradient {g}"
    if impl.provides("inter_class_relation"):
        s2, t2 = case.student[:, :2], case.teacher[:, :2]
        rows = [
            float(impl.value("inter_class_relation", s2[i : i + 1], t2[i : i + 1], tau=tau)) for i in range(len(s2))
        ]
        ok = [min(abs(r - 0.0), abs(r - 1.0), abs(r - 2.0)) <= 1e-6 for r in rows]
        assert all(ok), f"C = 2 rows give 1 − ρ = {rows}, not in {{0, 1, 2}}"


@pytest.mark.kdref(kind="law", functions=RELATIONS)
@given(data=st.data(), c_s=st.floats(-30, 30), c_t=st.floats(-30, 30), tau=TAUS)
def test_invariant_to_per_row_logit_shift(
    impl: Implementation, data: st.DataObject, c_s: float, c_t: float, tau: float
) -> None:
    """Adding a constant to every logit of a row (student or teacher) changes no relation term (P7)."""
    case = data.draw(relation_cases(impl, temperature=st.just(tau)), label="case")
    rng = np.random.default_rng(case.samples)
    cs = c_s * tau * rng.uniform(0.5, 1.5, (case.samples, 1))
    ct = c_t * tau * rng.uniform(0.5, 1.5, (case.samples, 1))
    shift_s = impl.round(case.student + cs) - case.student
    shift_t = impl.round(case.teacher + ct) - case.teacher
    exact = np.all(shift_s == shift_s[..., :1]) and np.all(shift_t == shift_t[..., :1])
    if not exact:
        return  # rounding made the shift inexact: nothing to compare
    tol = tolerance(impl.dtype)
    mag = magnitude(case.student + shift_s, case.teacher + shift_t, temperature=tau)
    kappa = _relation_kappa(case, tau)
    for fn in RELATIONS:
        if impl.provides(fn):
            a = impl.value(fn, case.student, case.teacher, tau=tau)
            b = impl.value(fn, case.student + shift_s, case.teacher + shift_t, tau=tau)
            w = _weight(fn, 2.0, 2.0, tau)
            assert_close(b, a, rtol=0, atol=16 * tol.eps * mag * kappa * w, what=f"{fn} after a per-row shift")


@pytest.mark.kdref(kind="law", functions=RELATIONS)
@given(data=st.data(), mode=st.sampled_from(MODES), tau=TAUS)
def test_gradients_sum_to_zero_over_classes(impl: Implementation, data: st.DataObject, mode: str, tau: float) -> None:
    """Σ_j ∂L/∂s_ij = 0 for every row: the softmax makes each term blind to a per-row shift."""
    case = data.draw(relation_cases(impl, temperature=st.just(tau)), label="case")
    tol = tolerance(impl.dtype)
    kappa = _relation_kappa(case, tau)
    for fn in RELATIONS:
        if impl.provides(fn):
            _, g = impl.value_and_grad(fn, case.student, case.teacher, tau=tau, eps_mode=mode)
            floor = 16 * tol.eps * _grad_scale(kappa, tau, _weight(fn, 2.0, 2.0, tau)) * case.classes
            bound = 8 * tol.grad_rtol * np.abs(g).sum(-1) + floor
            assert np.all(np.abs(g.sum(-1)) <= bound), f"{fn}: gradient rows sum to {g.sum(-1)}"


@pytest.mark.kdref(kind="robustness", functions=RELATIONS)
@given(data=st.data(), mode=st.sampled_from(MODES))
def test_finite_at_extreme_logits(impl: Implementation, data: st.DataObject, mode: str) -> None:
    """Values stay in [0, 2·weight] and values and gradients stay finite for |z|/τ up to 1e4.

    Exception by design: in the ε modes a (near-)uniform student row or column has gradient ≈ v̄/ε (up to ~1e8),
    which a float16 gradient cannot hold; there only the value is checked.
    """
    case = data.draw(relation_cases(impl, regimes=("extreme",), large_classes=True), label="case")
    T = case.temperature
    for fn in RELATIONS:
        if impl.provides(fn):
            value, grad = impl.value_and_grad(fn, case.student, case.teacher, tau=T, eps_mode=mode)
            assert_finite(value, what=f"{fn} value")
            if impl.dtype != "float16" or mode == "exact":
                assert_finite(grad, what=f"{fn} gradient")
            w = _weight(fn, 2.0, 2.0, T)
            assert -1e-6 * w <= float(value) <= 2.0 * w * (1 + 1e-6), f"{fn} = {value} outside [0, 2·{w}]"


@pytest.mark.kdref(kind="law", functions=RELATIONS)
@given(data=st.data())
def test_teacher_receives_no_gradient(impl: Implementation, data: st.DataObject) -> None:
    """A teacher-logits tensor that requires grad gets none (or zeros): only the student is trained."""
    if impl.kind != "torch":
        pytest.skip("only meaningful for autograd implementations")
    case = data.draw(relation_cases(impl, large_classes=False), label="case")
    for fn in RELATIONS:
        if impl.provides(fn):
            g = impl.teacher_grad(fn, case.student, case.teacher, tau=case.temperature)
            assert g is None or not np.any(g), f"{fn} sent a gradient into teacher_logits: {g}"


@pytest.mark.kdref(kind="agreement", functions=("pearson", *RELATIONS))
def test_gradcheck_float64(impl: Implementation) -> None:
    """torch.autograd.gradcheck passes in float64 for every ε mode (autograd against finite differences)."""
    if impl.kind != "torch" or impl.dtype != "float64":
        pytest.skip("gradcheck runs on float64 autograd implementations")
    import torch

    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 4, dtype=torch.float64, generator=g).to(impl.device).requires_grad_()
    t = torch.randn(3, 4, dtype=torch.float64, generator=g).to(impl.device)
    for mode in MODES:
        for fn in ("pearson", *RELATIONS):
            if impl.provides(fn):
                f = getattr(impl.namespace, fn)
                kw = {"eps_mode": mode} if fn == "pearson" else {"tau": 2.0, "eps_mode": mode}
                assert torch.autograd.gradcheck(lambda x, f=f, kw=kw: f(x, t, **kw), (s,))
