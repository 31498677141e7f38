"""funmatch_loss against the big_vision distill trainer's computation (official-code facts re-implemented here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kdref import reference
from kdref.reference._ops import log_softmax

CLIP = 1e-8


def big_vision_kl(student: np.ndarray, teacher: np.ndarray, t: float) -> float:
    """big_vision ``kl`` distance: t²·[−Σ p log softmax(s/t) + Σ p log max(p, 1e-8)], mean over the batch."""
    p = np.exp(log_softmax(teacher / t))
    per_example = -np.sum(p * log_softmax(student / t), -1) + np.sum(p * np.log(np.maximum(p, CLIP)), -1)
    return float(t * t * np.mean(per_example))


def clip_bound(C: int, t: float) -> float:
    """max over p ∈ (0, 1e-8] of p·log(1e-8/p) is 1e-8/e, for at most C − 1 clipped classes, times t²."""
    return (C - 1) * t * t * CLIP / math.e


@pytest.mark.parametrize("C", [10, 1000])
@pytest.mark.parametrize("scale", [1.0, 5.0, 10.0, 20.0])
@pytest.mark.parametrize("t", [1.0, 10.0])
def test_official_kl_exceeds_exact_kl_by_at_most_the_clip_bound(C: int, scale: float, t: float) -> None:
    """0 ≤ official − exact ≤ (C − 1)·t²·1e-8/e (the 1e-8 clip only ever raises the teacher's log-probability)."""
    rng = np.random.default_rng(C + int(scale) + int(t))
    s, v = rng.standard_normal((2, 64, C)) * scale
    diff = big_vision_kl(s, v, t) - float(reference.funmatch_loss(s, v, temperature=t))
    assert -1e-12 <= diff <= clip_bound(C, t) + 1e-12, (diff, clip_bound(C, t))


def test_clip_bound_is_attained() -> None:
    """A teacher with C − 1 probabilities at exactly 1e-8/e attains the bound: 3.675e-6 for C = 1000, t = 1."""
    C = 1000
    v = np.full((1, C), math.log(CLIP / math.e))
    v[0, 0] = math.log(1.0 - (C - 1) * CLIP / math.e)
    s = np.zeros((1, C))
    diff = big_vision_kl(s, v, 1.0) - float(reference.funmatch_loss(s, v, temperature=1.0))
    assert diff == pytest.approx(clip_bound(C, 1.0), rel=1e-6)
    assert clip_bound(C, 1.0) == pytest.approx(3.675e-6, rel=1e-3)


def test_measured_clip_effect_on_confident_imagenet_sized_teacher() -> None:
    """Measured: B = 64, C = 1000, logits N(0, 5²), t = 1: official − exact ≈ 6e-7 on a loss ≈ 15 (relative 4e-8)."""
    rng = np.random.default_rng(1000 + 5 + 1)
    s, v = rng.standard_normal((2, 64, 1000)) * 5.0
    exact = float(reference.funmatch_loss(s, v, temperature=1.0))
    diff = big_vision_kl(s, v, 1.0) - exact
    assert 1e-7 < diff < 1e-6
    assert 1e-8 < diff / exact < 1e-7
    assert 10.0 < exact < 20.0


def test_clip_has_no_effect_at_high_temperature() -> None:
    """At t = 10 no tempered teacher probability of these draws falls below 1e-8: the two agree to rounding."""
    rng = np.random.default_rng(3)
    s, v = rng.standard_normal((2, 64, 1000)) * 10.0
    exact = float(reference.funmatch_loss(s, v, temperature=10.0))
    assert abs(big_vision_kl(s, v, 10.0) - exact) <= 1e-13 * exact


def test_several_teachers_summed_equal_the_probability_space_ensemble_gradient() -> None:
    """Σ_k ∇ funmatch(s, t_k) = K·∇ funmatch(s, T·log p̄), p̄ the mean tempered teacher distribution (B2)."""
    rng = np.random.default_rng(4)
    s = rng.standard_normal((8, 7))
    teachers = rng.standard_normal((3, 8, 7)) * 2.0
    T = 2.0
    summed = sum(reference.funmatch_loss_grad(s, t, temperature=T) for t in teachers)
    p_bar = np.mean([np.exp(log_softmax(t / T)) for t in teachers], axis=0)
    ensemble = reference.funmatch_loss_grad(s, T * np.log(p_bar), temperature=T)
    np.testing.assert_allclose(summed, 3 * ensemble, rtol=1e-12, atol=1e-15)

    # The values differ by a constant (a difference of teacher entropies), not by the factor K.
    def gap(x: np.ndarray) -> float:
        ensemble_kl = reference.funmatch_loss(x, T * np.log(p_bar), temperature=T)
        return float(sum(reference.funmatch_loss(x, t, temperature=T) for t in teachers) - 3 * ensemble_kl)

    assert gap(s) == pytest.approx(gap(s + rng.standard_normal(s.shape)), rel=1e-10)
