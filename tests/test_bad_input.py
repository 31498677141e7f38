"""Every public function of the Hinton and DKD tiers rejects bad input with an error naming the argument."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from kdref import losses as L
from kdref import reference as R

TIERS = {"reference": (R, np.asarray), "losses": (L, torch.as_tensor)}
WITH_TARGET = ("hinton_loss", "tckd", "nckd", "dkd_loss")
WITHOUT_TARGET = ("kd_loss", "soft_cross_entropy")
ALL = WITHOUT_TARGET + WITH_TARGET


def _call(tier: str, fn: str, s: Any, t: Any, y: Any = None, **kw: Any) -> Any:
    ns, conv = TIERS[tier]
    args = [conv(s), conv(t)]
    if fn in WITH_TARGET:
        args.append(conv(np.zeros(np.shape(s)[:-1], dtype=np.int64) if y is None else y))
    return getattr(ns, fn)(*args, **kw)


def _raises(exc: type[Exception], *names: str) -> Callable[..., Any]:
    def check(call: Callable[[], Any]) -> None:
        with pytest.raises(exc) as info:
            call()
        for name in names:
            assert name in str(info.value), f"error does not name {name!r}: {info.value}"

    return check


GOOD = np.arange(12, dtype=np.float64).reshape(3, 4) / 3.0


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("fn", ALL)
class TestLogits:
    def test_shape_mismatch(self, tier: str, fn: str) -> None:
        _raises(ValueError, fn, "`teacher_logits`", "(3, 5)")(lambda: _call(tier, fn, GOOD, np.zeros((3, 5))))

    def test_rank_one(self, tier: str, fn: str) -> None:
        _raises(ValueError, "`student_logits`", "at least 2 dimensions")(
            lambda: _call(tier, fn, GOOD[0], GOOD[0], np.array(0))
        )

    def test_one_class(self, tier: str, fn: str) -> None:
        _raises(ValueError, "`student_logits`", "at least 2 classes")(lambda: _call(tier, fn, GOOD[:, :1], GOOD[:, :1]))

    def test_empty_batch(self, tier: str, fn: str) -> None:
        _raises(ValueError, "`student_logits`", "at least one sample")(lambda: _call(tier, fn, GOOD[:0], GOOD[:0]))

    def test_integer_logits(self, tier: str, fn: str) -> None:
        ints = np.arange(12).reshape(3, 4)
        _raises(TypeError, "`student_logits`", "floating")(lambda: _call(tier, fn, ints, GOOD))

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    def test_non_finite_logits(self, tier: str, fn: str, bad: float) -> None:
        t = GOOD.copy()
        t[1, 2] = bad
        _raises(ValueError, "`teacher_logits`", "finite")(lambda: _call(tier, fn, GOOD, t))
        _raises(ValueError, "`student_logits`", "finite")(lambda: _call(tier, fn, t, GOOD))

    @pytest.mark.parametrize("T", [0.0, -1.0, math.nan, math.inf])
    def test_bad_temperature_value(self, tier: str, fn: str, T: float) -> None:
        _raises(ValueError, "`temperature`")(lambda: _call(tier, fn, GOOD, GOOD, temperature=T))

    @pytest.mark.parametrize("T", ["4", True, None])
    def test_bad_temperature_type(self, tier: str, fn: str, T: Any) -> None:
        _raises(TypeError, "`temperature`")(lambda: _call(tier, fn, GOOD, GOOD, temperature=T))

    @pytest.mark.parametrize("reduction", ["avg", "batchmean", None])
    def test_unknown_reduction(self, tier: str, fn: str, reduction: Any) -> None:
        _raises(ValueError, "`reduction`")(lambda: _call(tier, fn, GOOD, GOOD, reduction=reduction))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("fn", WITH_TARGET)
class TestTarget:
    def test_out_of_range(self, tier: str, fn: str) -> None:
        _raises(ValueError, "`target`", "[0, 3]")(lambda: _call(tier, fn, GOOD, GOOD, np.array([0, 4, 1])))
        _raises(ValueError, "`target`")(lambda: _call(tier, fn, GOOD, GOOD, np.array([0, -1, 1])))

    def test_wrong_shape(self, tier: str, fn: str) -> None:
        _raises(ValueError, "`target`", "(3,)")(lambda: _call(tier, fn, GOOD, GOOD, np.array([0, 1])))
        _raises(ValueError, "`target`")(lambda: _call(tier, fn, GOOD, GOOD, np.zeros((3, 1), dtype=np.int64)))

    @pytest.mark.parametrize("bad", [np.array([0.0, 1.0, 2.0]), np.array([True, False, True])])
    def test_wrong_dtype(self, tier: str, fn: str, bad: np.ndarray) -> None:
        _raises(TypeError, "`target`", "integer")(lambda: _call(tier, fn, GOOD, GOOD, bad))


@pytest.mark.parametrize("tier", TIERS)
def test_weights_are_checked(tier: str) -> None:
    _raises(ValueError, "`lam`")(lambda: _call(tier, "hinton_loss", GOOD, GOOD, lam=1.5))
    _raises(ValueError, "`alpha`")(lambda: _call(tier, "dkd_loss", GOOD, GOOD, alpha=-1.0))
    _raises(ValueError, "`beta`")(lambda: _call(tier, "dkd_loss", GOOD, GOOD, beta=math.nan))


@pytest.mark.parametrize("fn", ALL)
def test_mixed_devices(fn: str) -> None:
    s, t = torch.as_tensor(GOOD), torch.as_tensor(GOOD).to("meta")
    args = (s, t, torch.zeros(3, dtype=torch.long)) if fn in WITH_TARGET else (s, t)
    _raises(ValueError, "`teacher_logits`", "device")(lambda: getattr(L, fn)(*args))


@pytest.mark.parametrize("fn", WITH_TARGET)
def test_target_on_another_device(fn: str) -> None:
    s = torch.as_tensor(GOOD)
    _raises(ValueError, "`target`", "device")(
        lambda: getattr(L, fn)(s, s, torch.zeros(3, dtype=torch.long, device="meta"))
    )


@pytest.mark.parametrize("fn", ALL)
def test_torch_rejects_arrays_that_are_not_tensors(fn: str) -> None:
    args = (
        (GOOD, torch.as_tensor(GOOD), torch.zeros(3, dtype=torch.long))
        if fn in WITH_TARGET
        else (GOOD, torch.as_tensor(GOOD))
    )
    _raises(TypeError, "`student_logits`", "torch.Tensor")(lambda: getattr(L, fn)(*args))


def test_reference_grad_output_shape_is_checked() -> None:
    _raises(ValueError, "`grad_output`")(lambda: R.kd_loss_grad(GOOD, GOOD, reduction="none", grad_output=np.ones(2)))


def test_warmup_factor_is_one_based() -> None:
    assert R.dkd_warmup_factor(1, 20) == 1 / 20 and R.dkd_warmup_factor(20, 20) == 1.0
    assert R.dkd_warmup_factor(240, 20) == 1.0 and L.dkd_warmup_factor(5) == 0.25
    _raises(ValueError, "`epoch`", "1-based")(lambda: R.dkd_warmup_factor(0))
    _raises(ValueError, "`warmup_epochs`")(lambda: R.dkd_warmup_factor(3, 0))


def test_value_checks_can_be_disabled() -> None:
    s = torch.as_tensor(GOOD)
    old = L.set_value_checks(False)
    try:
        # Without value checks a NaN logit propagates instead of raising.
        bad = s.clone()
        bad[0, 0] = math.nan
        assert torch.isnan(L.kd_loss(bad, s))
    finally:
        L.set_value_checks(old)
    with pytest.raises(ValueError, match="`student_logits`"):
        L.kd_loss(bad, s)
