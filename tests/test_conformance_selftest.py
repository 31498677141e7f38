"""The suite tests itself: every wrong implementation in the catalogue is flagged by the property aimed at it,
with the right diagnosis where one exists, and kdref's own tiers pass the same properties."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest

from kdref import losses as L
from kdref.conformance import TorchImplementation
from kdref.conformance import test_deit as DE
from kdref.conformance import test_dist as DI
from kdref.conformance import test_dkd as D
from kdref.conformance import test_funmatch as FM
from kdref.conformance import test_hinton as H
from kdref.conformance import test_simkd as SK

from . import wrong_implementations as W

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # pragma: no cover - Hypothesis depends on the backport on Python 3.10
    from exceptiongroup import BaseExceptionGroup


def _impl(name: str, dtype: str = "float64", **functions: Any) -> TorchImplementation:
    return TorchImplementation(f"wrong:{name}", SimpleNamespace(**functions), dtype, "cpu")


# (what is wrong, the implementation, the property aimed at it, the diagnosis it must name or None)
CATALOGUE = [
    (
        "KD without T²",
        _impl("kd_without_t2", kd_loss=W.kd_without_t2),
        H.test_kd_loss_agrees_with_reference,
        "the T² factor is missing",
    ),
    (
        "KD averaged over N·C",
        _impl("kd_kl_div_mean", kd_loss=W.kd_kl_div_mean),
        H.test_kd_loss_agrees_with_reference,
        "averaging over N·C",
    ),
    (
        "KL reversed",
        _impl("kd_reversed", kd_loss=W.kd_reversed),
        H.test_kd_loss_agrees_with_reference,
        "KL direction is reversed",
    ),
    (
        "student and teacher swapped",
        _impl("kd_swapped", kd_loss=W.kd_swapped_arguments),
        H.test_kd_loss_agrees_with_reference,
        "KL direction is reversed",
    ),
    (
        "soft CE in place of KL",
        _impl("kd_soft_ce", kd_loss=W.kd_soft_cross_entropy),
        H.test_kd_loss_agrees_with_reference,
        "the KL plus the teacher's entropy",
    ),
    (
        "a reduction that sums",
        _impl("kd_sum", kd_loss=W.kd_sums_for_mean),
        H.test_kd_loss_agrees_with_reference,
        "a sum over samples",
    ),
    (
        "log of a softmax",
        _impl("kd_log_softmax", "float32", kd_loss=W.kd_log_of_softmax),
        H.test_finite_at_extreme_logits,
        None,
    ),
    (
        "gradient leaks into the teacher",
        _impl("kd_leak", kd_loss=W.kd_leaks_into_teacher),
        H.test_teacher_receives_no_gradient,
        None,
    ),
    (
        "soft CE without the teacher entropy",
        _impl("sce_kl", kd_loss=L.kd_loss, soft_cross_entropy=W.soft_ce_is_kl),
        H.test_soft_cross_entropy_agrees_with_reference,
        "the teacher's entropy is missing",
    ),
    (
        "λ on the soft term",
        _impl("hinton_lambda", hinton_loss=W.hinton_lambda_on_soft),
        H.test_hinton_loss_agrees_with_reference,
        "λ weights the soft term",
    ),
    ("−1000 target mask", _impl("nckd_mask", nckd=W.nckd_with_mask), D.test_nckd_agrees_with_reference, None),
    (
        "non-target softmax over all classes",
        _impl("nckd_all", nckd=W.nckd_includes_target),
        D.test_nckd_is_independent_of_the_target_logits,
        None,
    ),
    (
        "TCKD from the log of a softmax",
        _impl("tckd_log", "float32", tckd=W.tckd_log_of_softmax),
        D.test_dkd_finite_at_extreme_logits,
        None,
    ),
    ("TCKD with T²", _impl("tckd_t2", tckd=W.tckd_with_t2), D.test_tckd_agrees_with_reference, "extra T²"),
    (
        "DKD with KD's (1 − p_t) weight",
        _impl("dkd_weighted", dkd_loss=W.dkd_weighted_nckd),
        D.test_dkd_loss_agrees_with_reference,
        "(1 − p_t) weight",
    ),
    (
        "DKD without T²",
        _impl("dkd_no_t2", dkd_loss=W.dkd_without_t2),
        D.test_dkd_loss_agrees_with_reference,
        "the T² factor is missing",
    ),
    (
        "uncentred Pearson",
        _impl("dist_cos", dist_loss=W.dist_uncentred),
        DI.test_relations_agree_with_reference,
        "cosine of uncentred vectors",
    ),
    (
        "DIST's official ε",
        _impl("dist_eps", dist_loss=W.dist_official_eps),
        DI.test_relations_agree_with_reference,
        "ε added to the product of norms",
    ),
    (
        "DIST without τ²",
        _impl("dist_no_tau2", dist_loss=W.dist_without_tau2),
        DI.test_relations_agree_with_reference,
        "the τ² factor is missing",
    ),
    (
        "DeiT's N·C normalisation",
        _impl("deit_numel", deit_soft_loss=W.deit_soft_numel),
        DE.test_deit_soft_loss_agrees_with_reference,
        "averaged over N·C",
    ),
    (
        "function matching without t²",
        _impl("fm_no_t2", funmatch_loss=W.funmatch_without_t2),
        FM.test_funmatch_loss_agrees_with_reference,
        "the T² factor is missing",
    ),
    (
        "SimKD as a sum of squares",
        _impl("simkd_sum", simkd_loss=W.simkd_sum_of_squares),
        SK.test_simkd_loss_agrees_with_reference,
        "the squared norm",
    ),
]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


@pytest.mark.parametrize(
    ("label", "impl", "prop", "diagnosis"), CATALOGUE, ids=[f"{c[0]}->{c[2].__name__}" for c in CATALOGUE]
)
def test_suite_flags_wrong_implementation(label: str, impl: TorchImplementation, prop: Any, diagnosis: str | None):
    with pytest.raises((AssertionError, BaseExceptionGroup)) as info:
        prop(impl=impl)
    leaves = _leaves(info.value)
    assert all(isinstance(e, AssertionError) for e in leaves), f"{label}: failed by a crash, not a property: {leaves}"
    if diagnosis is not None:
        text = "\n".join(str(e) for e in leaves)
        assert "diagnosis: " in text and diagnosis in text, (
            f"{label}: expected the diagnosis '{diagnosis}', got\n{text}"
        )


def test_catalogue_is_broad() -> None:
    assert len(CATALOGUE) >= 15
    assert len({c[2].__name__ for c in CATALOGUE}) >= 10


@pytest.mark.parametrize("prop", sorted({c[2] for c in CATALOGUE}, key=lambda p: p.__name__), ids=lambda p: p.__name__)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_kdref_passes_the_same_properties(prop: Any, dtype: str) -> None:
    prop(impl=TorchImplementation(f"kdref.losses[cpu,{dtype}]", L, dtype, "cpu"))
