"""Function matching's batch mixup and its coefficient sampler, in both tiers (Beyer et al. 2022, big_vision)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

import kdref
from kdref import reference

TIERS = ("numpy", "torch")


def _mix(tier: str, *arrays: np.ndarray, a: float) -> tuple[np.ndarray, ...]:
    if tier == "numpy":
        return reference.mixup_batch(*arrays, a=a)
    return tuple(m.numpy() for m in kdref.mixup_batch(*(torch.as_tensor(x) for x in arrays), a=a))


def _coefficients(tier: str, p: float, n: int, seed: int = 0) -> np.ndarray:
    if tier == "numpy":
        rng = np.random.default_rng(seed)
        return np.array([reference.mixup_coefficient(rng, p) for _ in range(n)])
    g = torch.Generator().manual_seed(seed)
    return np.array([kdref.mixup_coefficient(g, p) for _ in range(n)])


@pytest.fixture
def batch() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((5, 3, 4, 4))


@pytest.mark.parametrize("tier", TIERS)
def test_mixup_is_a_times_x_plus_one_minus_a_times_the_rolled_batch(tier: str, batch: np.ndarray) -> None:
    """x̃_i = a·x_i + (1 − a)·x_{i−1}: each example is mixed with its neighbour, the batch rolled by one."""
    (mixed,) = _mix(tier, batch, a=0.7)
    for i in range(batch.shape[0]):
        np.testing.assert_allclose(mixed[i], 0.7 * batch[i] + 0.3 * batch[i - 1], rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("a", [1.0, 0.0])
def test_mixup_with_a_one_is_the_identity(tier: str, batch: np.ndarray, a: float) -> None:
    """a = 1 leaves the batch unchanged (and a = 0 folds to a = 1)."""
    (mixed,) = _mix(tier, batch, a=a)
    np.testing.assert_array_equal(mixed, batch)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("a", [0.0, 0.2, 0.5, 0.93])
def test_mixup_fold_makes_a_and_one_minus_a_equivalent(tier: str, batch: np.ndarray, a: float) -> None:
    """mixup(x, a) = mixup(x, 1 − a): a is folded to max(a, 1 − a) ∈ [0.5, 1] (property 19, B5)."""
    np.testing.assert_array_equal(_mix(tier, batch, a=a)[0], _mix(tier, batch, a=1.0 - a)[0])


@pytest.mark.parametrize("tier", TIERS)
def test_mixup_applies_the_same_coefficient_and_roll_to_every_array(tier: str, batch: np.ndarray) -> None:
    """Arrays mixed together stay aligned: mixing a per-example linear map of x equals mapping the mixed x."""
    M = np.random.default_rng(1).standard_normal((48, 7))
    flat = batch.reshape(5, -1)
    x_mixed, y_mixed, flat_mixed = _mix(tier, batch, flat @ M, flat, a=0.35)
    np.testing.assert_allclose(y_mixed, flat_mixed @ M, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x_mixed.reshape(5, -1), flat_mixed, rtol=0, atol=0)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("a", [0.5, 0.61, 0.99])
def test_mixup_is_a_convex_combination(tier: str, batch: np.ndarray, a: float) -> None:
    """Each mixed entry lies between x_i and x_{i−1}, no closer to the neighbour than to itself (a ≥ 1/2)."""
    (mixed,) = _mix(tier, batch, a=a)
    rolled = np.roll(batch, 1, axis=0)
    lo, hi = np.minimum(batch, rolled), np.maximum(batch, rolled)
    assert np.all((lo <= mixed + 1e-15) & (mixed <= hi + 1e-15))
    assert np.all(np.abs(mixed - batch) <= np.abs(mixed - rolled) + 1e-15)


@pytest.mark.parametrize("tier", TIERS)
def test_mixed_one_hot_labels_are_a_distribution(tier: str) -> None:
    """Mixing one-hot labels gives rows ≥ 0 summing to 1, weight a on the own class when the neighbour differs."""
    y = np.array([0, 3, 3, 1, 2, 0])
    onehot = np.eye(4)[y]
    (mixed,) = _mix(tier, onehot, a=0.3)
    assert np.all(mixed >= 0)
    np.testing.assert_allclose(mixed.sum(-1), 1.0, rtol=0, atol=1e-15)
    differs = y != np.roll(y, 1)
    np.testing.assert_allclose(mixed[np.arange(6), y][differs], 0.7, atol=1e-15)
    np.testing.assert_allclose(mixed[np.arange(6), y][~differs], 1.0, atol=1e-15)


def test_nonlinear_teacher_must_see_the_mixed_image() -> None:
    """t(a·x + (1 − a)·x′) ≠ a·t(x) + (1 − a)·t(x′) for a nonlinear teacher; = for an affine one (B4, property 19)."""
    rng = np.random.default_rng(2)
    W, b = rng.standard_normal((6, 10)), rng.standard_normal(10)
    x = rng.standard_normal((4, 6))
    nonlinear = lambda z: np.tanh(z) @ W + b  # noqa: E731
    affine = lambda z: z @ W + b  # noqa: E731
    a = 0.7
    (x_mix,) = reference.mixup_batch(x, a=a)
    for teacher, differs in ((nonlinear, True), (affine, False)):
        (label_mix,) = reference.mixup_batch(teacher(x), a=a)
        gap = np.max(np.abs(teacher(x_mix) - label_mix))
        assert (gap > 1e-2) if differs else (gap < 1e-12), gap
    # And the teachers' predicted distributions differ too (what the KL actually compares).
    assert reference.funmatch_loss(nonlinear(x_mix), reference.mixup_batch(nonlinear(x), a=a)[0]) > 1e-4


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("p", [0.2, 1.0, 4.0])
def test_mixup_coefficient_lies_in_half_to_one(tier: str, p: float) -> None:
    """Every coefficient drawn is in [0.5, 1]."""
    a = _coefficients(tier, p, 300)
    assert np.all((a >= 0.5) & (a <= 1.0)), a


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("p", [0.4, 1.0, 3.0])
def test_mixup_coefficient_is_a_folded_beta(tier: str, p: float) -> None:
    """a = max(b, 1 − b), b ~ Beta(p, p): CDF F(x) = I_x(p, p) − I_{1−x}(p, p) on [1/2, 1] (KS test, fixed seed)."""
    a = _coefficients(tier, p, 2000, seed=7)
    beta = scipy.stats.beta(p, p)
    result = scipy.stats.kstest(a, lambda x: beta.cdf(x) - beta.cdf(1.0 - x))
    assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("tier", TIERS)
def test_mixup_coefficient_is_reproducible(tier: str) -> None:
    """The same seed gives the same sequence (all randomness comes from the generator passed in)."""
    np.testing.assert_array_equal(_coefficients(tier, 0.5, 20, seed=3), _coefficients(tier, 0.5, 20, seed=3))


def test_mixup_torch_keeps_dtype_and_is_differentiable() -> None:
    """Torch mixup returns each input's dtype and passes gradients (a linear map)."""
    x = torch.randn(3, 2, dtype=torch.float16)
    w = torch.randn(3, 4, dtype=torch.float32, requires_grad=True)
    mx, mw = kdref.mixup_batch(x, w, a=0.6)
    assert mx.dtype == torch.float16 and mw.dtype == torch.float32
    mw.sum().backward()
    torch.testing.assert_close(w.grad, torch.ones_like(w))  # a + (1 − a) per entry


@pytest.mark.parametrize("tier", TIERS)
def test_mixup_bad_input(tier: str) -> None:
    """Bad arguments are rejected with the function and argument named."""
    mix = reference.mixup_batch if tier == "numpy" else kdref.mixup_batch
    conv = np.asarray if tier == "numpy" else torch.as_tensor
    x = conv(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"mixup_batch: expects at least one"):
        mix(a=0.5)
    with pytest.raises(ValueError, match=r"mixup_batch: `a` must be <= 1.0"):
        mix(x, a=1.5)
    with pytest.raises(ValueError, match=r"mixup_batch: `a` must be >= 0.0"):
        mix(x, a=-0.1)
    with pytest.raises(TypeError, match=r"mixup_batch: `a` must be a real number"):
        mix(x, a="0.5")
    with pytest.raises(ValueError, match=r"mixup_batch: `arrays\[1\]` has batch size 2"):
        mix(x, conv(np.zeros((2, 2))), a=0.5)
    with pytest.raises(TypeError, match=r"mixup_batch: `arrays\[0\]` must be a floating-point"):
        mix(conv(np.zeros((3, 2), dtype=np.int64)), a=0.5)
    with pytest.raises(ValueError, match=r"mixup_batch: `arrays\[0\]` must have a non-empty batch"):
        mix(conv(np.zeros((0, 2))), a=0.5)
    with pytest.raises(TypeError, match=r"mixup_batch: `a` must be a real number"):
        mix(x, a=True)


def test_mixup_bad_input_tier_specific() -> None:
    """NumPy rejects non-finite inputs; Torch rejects non-tensors; samplers reject wrong generators and p ≤ 0."""
    with pytest.raises(ValueError, match=r"mixup_batch: `arrays\[0\]` must be finite"):
        reference.mixup_batch(np.array([[np.nan]]), a=0.5)
    with pytest.raises(TypeError, match=r"mixup_batch: `arrays\[0\]` must be a torch.Tensor"):
        kdref.mixup_batch(np.zeros((2, 2)), a=0.5)
    with pytest.raises(TypeError, match=r"mixup_coefficient: `rng` must be a numpy.random.Generator"):
        reference.mixup_coefficient(0)
    with pytest.raises(TypeError, match=r"mixup_coefficient: `generator` must be a torch.Generator"):
        kdref.mixup_coefficient(np.random.default_rng(0))
    for p in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match=r"mixup_coefficient: `p` must be"):
            reference.mixup_coefficient(np.random.default_rng(0), p)
        with pytest.raises(ValueError, match=r"mixup_coefficient: `p` must be"):
            kdref.mixup_coefficient(torch.Generator(), p)
