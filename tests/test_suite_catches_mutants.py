"""The property suite is not vacuous: each deliberately wrong implementation fails the property aimed at it,
while kdref's own Torch tier passes the same properties."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from kdref import losses as L
from kdref.conformance import TorchImplementation
from kdref.conformance import test_dkd as D
from kdref.conformance import test_hinton as H

from .official import mdistiller_nckd

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # pragma: no cover - Hypothesis depends on the backport on Python 3.10
    from exceptiongroup import BaseExceptionGroup


def _reduce(rows: torch.Tensor, reduction: str) -> torch.Tensor:
    return rows.mean() if reduction == "mean" else rows.sum() if reduction == "sum" else rows


def kd_without_t2(s, t, *, temperature=4.0, reduction="mean"):
    return L.kd_loss(s, t, temperature=temperature, reduction=reduction) / temperature**2


def kd_reversed(s, t, *, temperature=4.0, reduction="mean"):
    log_q, log_p = F.log_softmax(s.double() / temperature, -1), F.log_softmax(t.double() / temperature, -1)
    return _reduce(temperature**2 * (log_q.exp() * (log_q - log_p)).sum(-1), reduction)


def kd_log_of_softmax(s, t, *, temperature=4.0, reduction="mean"):
    p, q = torch.softmax(t.float() / temperature, -1), torch.softmax(s.float() / temperature, -1)
    return _reduce(temperature**2 * (p * (torch.log(p) - torch.log(q))).sum(-1), reduction)


def kd_leaks_into_teacher(s, t, *, temperature=4.0, reduction="mean"):
    log_q, log_p = F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1)
    return _reduce(temperature**2 * (log_p.exp() * (log_p - log_q)).sum(-1), reduction)


def kd_sums_for_mean(s, t, *, temperature=4.0, reduction="mean"):
    return L.kd_loss(s, t, temperature=temperature, reduction="sum" if reduction == "mean" else reduction)


def soft_ce_is_kl(s, t, *, temperature=4.0, reduction="mean"):
    return L.kd_loss(s, t, temperature=temperature, reduction=reduction) / temperature**2


def nckd_with_mask(s, t, y, *, temperature=4.0, reduction="mean"):
    C = s.shape[-1]
    s2, t2, y2 = s.reshape(-1, C).double(), t.reshape(-1, C).double(), y.reshape(-1)
    rows = [mdistiller_nckd(s2[i : i + 1], t2[i : i + 1], y2[i : i + 1], temperature) for i in range(s2.shape[0])]
    return _reduce(torch.stack(rows).reshape(s.shape[:-1]) / temperature**2, reduction)


def nckd_sees_target(s, t, y, *, temperature=4.0, reduction="mean"):
    # Wrong: the non-target softmax over all classes (the seed note's j ≠ i slip has the same effect).
    return L.kd_loss(s, t, temperature=temperature, reduction=reduction) / temperature**2


def tckd_log_of_softmax(s, t, y, *, temperature=4.0, reduction="mean"):
    ps, pt = torch.softmax(s.float() / temperature, -1), torch.softmax(t.float() / temperature, -1)
    ps_t, pt_t = ps.gather(-1, y[..., None])[..., 0], pt.gather(-1, y[..., None])[..., 0]
    bs, bt = torch.stack([ps_t, 1 - ps_t], -1), torch.stack([pt_t, 1 - pt_t], -1)
    return _reduce((bt * (torch.log(bt) - torch.log(bs))).sum(-1), reduction)


def _impl(name: str, dtype: str = "float64", **functions: Any) -> TorchImplementation:
    return TorchImplementation(f"mutant:{name}", SimpleNamespace(**functions), dtype, "cpu")


MUTANTS = [
    ("kd without T²", _impl("kd_without_t2", kd_loss=kd_without_t2), H.test_kd_loss_agrees_with_reference),
    ("kd without T²", _impl("kd_without_t2", kd_loss=kd_without_t2), H.test_kd_gradient_is_T_times_q_minus_p),
    ("KL reversed", _impl("kd_reversed", kd_loss=kd_reversed), H.test_kd_gradient_is_T_times_q_minus_p),
    ("log of softmax", _impl("kd_log_softmax", "float32", kd_loss=kd_log_of_softmax), H.test_finite_at_extreme_logits),
    ("teacher not detached", _impl("kd_leak", kd_loss=kd_leaks_into_teacher), H.test_teacher_receives_no_gradient),
    ("sum instead of mean", _impl("kd_sum", kd_loss=kd_sums_for_mean), H.test_kd_loss_agrees_with_reference),
    (
        "soft CE without entropy",
        _impl("sce_kl", kd_loss=L.kd_loss, soft_cross_entropy=soft_ce_is_kl),
        H.test_soft_cross_entropy_is_kl_plus_teacher_entropy,
    ),
    ("−1000 mask", _impl("nckd_mask", nckd=nckd_with_mask), D.test_nckd_agrees_with_reference),
    (
        "non-target softmax includes the target",
        _impl("nckd_all", nckd=nckd_sees_target),
        D.test_nckd_is_independent_of_the_target_logits,
    ),
    (
        "TCKD from log of softmax",
        _impl("tckd_log", "float32", tckd=tckd_log_of_softmax),
        D.test_dkd_finite_at_extreme_logits,
    ),
]


@pytest.mark.parametrize(("label", "impl", "prop"), MUTANTS, ids=[f"{m[0]}->{m[2].__name__}" for m in MUTANTS])
def test_property_catches_mutant(label: str, impl: TorchImplementation, prop: Any) -> None:
    assert_property_fails(prop, impl)


def assert_property_fails(prop: Any, impl: Any) -> BaseException:
    """The property fails by an assertion (Hypothesis may group several distinct assertion failures)."""
    with pytest.raises((AssertionError, BaseExceptionGroup)) as info:
        prop(impl=impl)
    leaves = _leaves(info.value)
    assert leaves and all(isinstance(e, AssertionError) for e in leaves), (
        f"failed by a crash, not an assertion: {leaves}"
    )
    return info.value


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


@pytest.mark.parametrize("prop", sorted({m[2] for m in MUTANTS}, key=lambda p: p.__name__), ids=lambda p: p.__name__)
def test_kdref_passes_the_same_properties(prop: Any) -> None:
    prop(impl=TorchImplementation("kdref.losses[cpu,float32]", L, "float32", "cpu"))
