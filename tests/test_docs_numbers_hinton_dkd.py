"""The numbers quoted in docs/methods/hinton.md, docs/methods/dkd.md and docs/errata.md, measured with kdref.

Each test names the page section it backs; a change here must be mirrored on the page, and vice versa.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kdref
from kdref import reference as R

from .official import mdistiller_nckd

# --------------------------------------------------------------------------------------------------------
# docs/methods/hinton.md
# --------------------------------------------------------------------------------------------------------

# The fixed pair of logits of the high-temperature example (C = 4).
Z_HT = np.array([[2.0, -1.0, 0.5, 3.0]])
V_HT = np.array([[1.0, 0.0, -2.0, 0.5]])


def _centred_difference(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (z - z.mean(-1, keepdims=True)) - (v - v.mean(-1, keepdims=True))


def test_high_temperature_limit_example() -> None:
    """hinton.md, derivation (c): limit, its O(1/T) error at T = 10 and 1e4, and the 1/T coefficient 33/64."""
    C = Z_HT.shape[-1]
    delta = _centred_difference(Z_HT, V_HT)
    limit = delta / C
    np.testing.assert_array_equal(limit, [[-0.0625, -0.5625, 0.3125, 0.3125]])
    kl_limit = float(np.sum(delta**2) / (2 * C))
    assert kl_limit == 1.03125  # = 33/32

    def grad_error(T: float) -> float:
        g = T * T * R.soft_cross_entropy_grad(Z_HT, V_HT, temperature=T, reduction="sum")
        return float(np.max(np.abs(g - limit)))

    def kl_error(T: float) -> float:
        return abs(float(R.kd_loss(Z_HT, V_HT, temperature=T)) - kl_limit)

    assert grad_error(10.0) == pytest.approx(0.050076, abs=1e-6)
    assert grad_error(1e4) == pytest.approx(5.1561e-5, rel=1e-4)
    assert kl_error(10.0) == pytest.approx(0.049026, abs=1e-6)
    assert kl_error(1e4) == pytest.approx(4.6879e-5, rel=1e-4)
    # T·error tends to the largest |1/T coefficient| ((z_i−z̄)² − var z − (v_i−v̄)² + var v)/(2C) = 33/64.
    zc, vc = Z_HT - Z_HT.mean(), V_HT - V_HT.mean()
    next_term = (zc**2 - np.mean(zc**2) - vc**2 + np.mean(vc**2)) / (2 * C)
    assert float(np.max(np.abs(next_term))) == 0.515625
    assert 1e4 * grad_error(1e4) == pytest.approx(0.515625, rel=1e-3)


def test_log_of_softmax_in_float32() -> None:
    """hinton.md, numerics: σ underflows to 0 past a logit gap of ≈ 103.97 in float32; log(softmax) gives inf."""
    assert torch.softmax(torch.tensor([0.0, 104.0]), 0)[0].item() == 0.0
    # Between ≈ 87.3 and ≈ 103.97 the probability is subnormal and its log is off: −103.28 instead of −103.
    sub = torch.log(torch.softmax(torch.tensor([0.0, 103.0]), 0))[0].item()
    assert sub == pytest.approx(-103.2789, abs=1e-3)
    assert torch.log_softmax(torch.tensor([0.0, 103.0]), 0)[0].item() == -103.0

    s = torch.tensor([[0.0, 120.0]], requires_grad=True)
    t = torch.zeros(1, 2)
    p, q = torch.softmax(t, 1), torch.softmax(s, 1)
    naive = (p * (torch.log(p) - torch.log(q))).sum()
    naive.backward()
    assert torch.isinf(naive) and torch.isnan(s.grad).all()
    s.grad = None
    ours = kdref.kd_loss(s, t, temperature=1.0)
    ours.backward()
    exact = 60.0 - math.log(2.0) + 0.5 * math.log1p(math.exp(-120.0))
    assert float(R.kd_loss(s.detach().numpy(), t.numpy(), temperature=1.0)) == pytest.approx(exact, rel=1e-15)
    assert exact == pytest.approx(59.306853, abs=1e-6)
    assert ours.item() == pytest.approx(exact, rel=1e-6)
    torch.testing.assert_close(s.grad, torch.tensor([[-0.5, 0.5]]))


def test_float16_inputs_are_computed_in_float32() -> None:
    """hinton.md, numerics: float16 σ underflows past a gap of ≈ 17.3; kdref computes in float32."""
    assert torch.softmax(torch.tensor([0.0, 17.0], dtype=torch.float16), 0)[0].item() > 0.0
    assert torch.softmax(torch.tensor([0.0, 17.4], dtype=torch.float16), 0)[0].item() == 0.0
    s = torch.tensor([[0.0, 30.0]], dtype=torch.float16, requires_grad=True)
    t = torch.zeros(1, 2, dtype=torch.float16)
    p, q = torch.softmax(t, 1), torch.softmax(s, 1)
    assert torch.isinf((p * (torch.log(p) - torch.log(q))).sum())
    ours = kdref.kd_loss(s, t, temperature=1.0)
    ours.backward()
    assert ours.dtype == torch.float32 and s.grad.dtype == torch.float16
    assert ours.item() == pytest.approx(15.0 - math.log(2.0), abs=1e-5)  # 14.30685
    torch.testing.assert_close(s.grad, torch.tensor([[-0.5, 0.5]], dtype=torch.float16))


def test_soft_cross_entropy_exceeds_kl_by_the_teacher_entropy() -> None:
    """hinton.md, derivation (d): s = (2, 0, −1), t = (1, 0.5, −0.5), T = 4."""
    s, t = np.array([[2.0, 0.0, -1.0]]), np.array([[1.0, 0.5, -0.5]])
    kd = float(R.kd_loss(s, t, temperature=4.0))
    ce = float(R.soft_cross_entropy(s, t, temperature=4.0))
    h = float(R.teacher_entropy(t, temperature=4.0))
    assert kd == pytest.approx(0.273413, abs=1e-6)
    assert kd / 16 == pytest.approx(0.0170883, abs=1e-7)
    assert ce == pytest.approx(1.104131, abs=1e-6)
    assert h == pytest.approx(1.087043, abs=1e-6)
    assert ce == pytest.approx(kd / 16 + h, abs=1e-15)
    np.testing.assert_allclose(
        R.soft_cross_entropy_grad(s, t, temperature=4.0), R.kd_loss_grad(s, t, temperature=4.0) / 16, rtol=1e-14
    )


def test_hinton_loss_value_carries_the_teacher_entropy_but_not_its_gradient() -> None:
    """hinton.md, differences: hinton_loss vs mdistiller's 0.1·CE + 0.9·KD on the fixed (64, 100) batch, T = 4."""
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(64, 100, generator=g) * 3, torch.randn(64, 100, generator=g) * 3
    y = torch.randint(0, 100, (64,), generator=g)
    s, t = s.double().requires_grad_(), t.double()
    ours = kdref.hinton_loss(s, t, y)
    (g_ours,) = torch.autograd.grad(ours, s)
    theirs = 0.1 * F.cross_entropy(s, y) + 0.9 * kdref.kd_loss(s, t)
    (g_theirs,) = torch.autograd.grad(theirs, s)
    ours, theirs = float(ours.detach()), float(theirs.detach())
    h = float(R.teacher_entropy(t.numpy(), temperature=4.0))
    assert ours == pytest.approx(71.2188, abs=1e-4)
    assert theirs == pytest.approx(8.9003, abs=1e-4)
    assert h == pytest.approx(4.32768, abs=1e-5)
    assert ours - theirs == pytest.approx(0.9 * 16 * h, rel=1e-12)
    assert ours - theirs == pytest.approx(62.3185, abs=1e-4)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------------------------------------
# docs/methods/dkd.md and docs/errata.md
# --------------------------------------------------------------------------------------------------------

# The worked example: student s, teacher t, target 0, T = 1.
S_EX = np.array([[1.0, 2.0, 0.0, -1.0]])
T_EX = np.array([[3.0, 1.0, 0.5, -0.5]])
Y_EX = np.array([0])


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_decomposition_example_and_the_notes_factor() -> None:
    """dkd.md worked example and errata S-4: KL = TCKD + (1 − p_t)·NCKD; the note's p_t·NCKD is 0.906819."""
    kl = float(R.kd_loss(S_EX, T_EX, temperature=1.0))
    tc = float(R.tckd(S_EX, T_EX, Y_EX, temperature=1.0))
    nc = float(R.nckd(S_EX, T_EX, Y_EX, temperature=1.0))
    p_t = float(_softmax(T_EX)[0, 0])
    q_t = float(_softmax(S_EX)[0, 0])
    assert kl == pytest.approx(0.758533, abs=1e-6)
    assert tc == pytest.approx(0.709730, abs=1e-6)
    assert nc == pytest.approx(0.245891, abs=1e-6)
    assert p_t == pytest.approx(0.801528, abs=1e-6)
    assert q_t == pytest.approx(0.236883, abs=1e-6)
    assert tc + (1 - p_t) * nc == pytest.approx(kl, abs=1e-15)
    assert (1 - p_t) * nc == pytest.approx(0.048803, abs=1e-6)
    # The note's Eq. (6) weights NCKD by 1 − p_{\t} = p_t.
    assert tc + p_t * nc == pytest.approx(0.906819, abs=1e-6)
    # DKD with α = β = 1 weights NCKD by 1 ≥ 1 − p_t, so it exceeds KD.
    assert float(R.dkd_loss(S_EX, T_EX, Y_EX, alpha=1.0, beta=1.0, temperature=1.0)) == pytest.approx(
        0.955621, abs=1e-6
    )


def test_non_target_softmax_must_exclude_the_target() -> None:
    """Errata S-5: excluding j ≠ i instead of j ≠ t gives numbers that do not sum to 1 (teacher of the example)."""
    z, t = T_EX[0], 0
    e = np.exp(z)
    right = np.array([e[i] / sum(e[j] for j in range(4) if j != t) for i in range(4) if i != t])
    wrong = np.array([e[i] / sum(e[j] for j in range(4) if j != i) for i in range(4) if i != t])
    np.testing.assert_allclose(right, [0.546549, 0.331499, 0.121952], atol=1e-6)
    assert right.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(wrong, [0.121673, 0.070427, 0.024804], atol=1e-6)
    assert wrong.sum() == pytest.approx(0.216905, abs=1e-6)
    np.testing.assert_allclose(right, _softmax(T_EX)[0, 1:] / (1 - _softmax(T_EX)[0, 0]), rtol=1e-14)


def test_nckd_log_ratio_with_p_instead_of_p_hat() -> None:
    """Errata S-6: p_\\t·Σ p̂_i log(p_i/q_i) = p_\\t·NCKD + p_\\t·log(p_\\t/q_\\t), not p_\\t·NCKD."""
    p, q = _softmax(T_EX)[0], _softmax(S_EX)[0]
    p_rest, q_rest = 1 - p[0], 1 - q[0]
    p_hat = p[1:] / p_rest
    nc = float(R.nckd(S_EX, T_EX, Y_EX, temperature=1.0))
    wrong = float(p_rest * np.sum(p_hat * np.log(p[1:] / q[1:])))
    assert wrong == pytest.approx(-0.218492, abs=1e-6)
    assert p_rest * nc == pytest.approx(0.048803, abs=1e-6)
    assert wrong - p_rest * nc == pytest.approx(p_rest * math.log(p_rest / q_rest), abs=1e-15)
    assert wrong - p_rest * nc == pytest.approx(-0.267295, abs=1e-6)
    tc = float(R.tckd(S_EX, T_EX, Y_EX, temperature=1.0))
    assert tc + wrong == pytest.approx(0.491238, abs=1e-6)


@pytest.mark.parametrize(
    ("gap", "excess", "tol"), [(950.0, 0.0, 1e-12), (990.0, 0.0149969, 1e-6), (1000.0, 250.212, 1e-3)]
)
def test_mask_leak_onset(gap: float, excess: float, tol: float) -> None:
    """dkd.md, differences: teacher [gap, 0, 0, 0], student [0, 1, 2, 3], T = 1, float64: masked − exact NCKD."""
    s, t, y = torch.tensor([[0.0, 1.0, 2.0, 3.0]]), torch.tensor([[gap, 0.0, 0.0, 0.0]]), torch.tensor([0])
    exact = float(R.nckd(s.numpy(), t.numpy(), y.numpy(), temperature=1.0))
    assert exact == pytest.approx(0.30899352, rel=1e-6)
    masked = float(mdistiller_nckd(s.double(), t.double(), y, 1.0))
    assert masked - exact == pytest.approx(excess, abs=tol)


def test_log_one_minus_p_target_without_cancellation() -> None:
    """dkd.md, numerics: student [40, 0, 0, 0], teacher zeros, target 0, T = 1: TCKD = 30 + log ¼ exactly."""
    s, t, y = np.array([[40.0, 0.0, 0.0, 0.0]]), np.zeros((1, 4)), np.array([0])
    exact = 30.0 + math.log(0.25)
    assert exact == pytest.approx(28.613706, abs=1e-6)
    assert float(R.tckd(s, t, y, temperature=1.0)) == pytest.approx(exact, rel=1e-14)
    assert float(kdref.tckd(torch.tensor(s), torch.tensor(t), torch.tensor(y), temperature=1.0)) == pytest.approx(
        exact, rel=1e-14
    )
    # 1 − p_t formed in float64 is exactly 0 here, so log(1 − p_t) is −∞ and the KL is infinite.
    q_t = _softmax(s)[0, 0]
    assert 1.0 - q_t == 0.0
    with np.errstate(divide="ignore"):
        naive = 0.25 * np.log(0.25 / q_t) + 0.75 * np.log(0.75 / (1.0 - q_t))
    assert np.isinf(naive)


def test_warmup_factor_values() -> None:
    """dkd.md, warm-up: 1-based epochs, min(epoch/20, 1)."""
    assert [R.dkd_warmup_factor(e) for e in (1, 10, 19, 20, 21, 240)] == [0.05, 0.5, 0.95, 1.0, 1.0, 1.0]


def test_dist_with_the_student_twice_is_constant() -> None:
    """Errata S-1: d_p(Y_s, Y_s) = 0 for every student, while the teacher-student relation is 1.162215 here."""
    s = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5], [1.0, -1.0, 0.0]])
    t = np.array([[1.0, 0.5, -1.0], [0.5, 0.0, 1.0], [-1.0, 1.0, 0.0]])
    for x in (s, t, 3.0 * s - t):
        assert float(R.inter_class_relation(x, x)) == pytest.approx(0.0, abs=1e-15)
        assert float(R.intra_class_relation(x, x)) == pytest.approx(0.0, abs=1e-15)
        assert np.max(np.abs(R.inter_class_relation_grad(x, x))) < 1e-15
    assert float(R.inter_class_relation(s, t)) == pytest.approx(1.162215, abs=1e-6)
    assert float(R.intra_class_relation(s, t)) == pytest.approx(0.853635, abs=1e-6)


def test_intra_is_the_mean_over_class_columns() -> None:
    """Errata S-2: intra = 1 − (1/C)·Σ_j ρ(Y_s[:, j], Y_t[:, j]), summed over the class index j."""
    s = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5], [1.0, -1.0, 0.0], [0.5, 0.5, 2.0]])
    t = np.array([[1.0, 0.5, -1.0], [0.5, 0.0, 1.0], [-1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    ys, yt = _softmax(s), _softmax(t)
    columns = 1.0 - np.mean([R.pearson(ys[:, j], yt[:, j]) for j in range(3)])
    assert float(R.intra_class_relation(s, t)) == pytest.approx(columns, abs=1e-14)
    rows = 1.0 - np.mean([R.pearson(ys[i], yt[i]) for i in range(4)])
    assert float(R.inter_class_relation(s, t)) == pytest.approx(rows, abs=1e-14)
    assert abs(columns - rows) > 0.1
