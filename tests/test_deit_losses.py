"""DeiT losses: bad input in both tiers, dtypes, ties, torch.compile, and a search for fusion disagreements."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st

import kdref.losses.deit as L
import kdref.reference.deit as R

S = np.array([[2.0, 0.0, -1.0], [0.5, 0.25, 1.0]])
T = np.array([[1.0, 0.5, -0.5], [-1.0, 2.0, 0.0]])
Y = np.array([0, 2])


def _torch(*xs: np.ndarray) -> list[torch.Tensor]:
    return [torch.as_tensor(x) for x in xs]


def _calls(ns, s, t, y) -> dict[str, object]:
    """One call per public function, with positional arrays (s, t, y) substituted."""
    return {
        "deit_soft_loss": lambda **kw: ns.deit_soft_loss(s, t, y, **kw),
        "deit_hard_loss": lambda **kw: ns.deit_hard_loss(s, t, y, **kw),
        "deit_loss": lambda **kw: ns.deit_loss(s, s, t, y, **kw),
    }


TIERS = [pytest.param(R, lambda *x: x, id="reference"), pytest.param(L, _torch, id="torch")]


@pytest.mark.parametrize(("ns", "conv"), TIERS)
@pytest.mark.parametrize(
    ("fn", "kw", "exc", "message"),
    [
        ("deit_soft_loss", {"tau": 0.0}, ValueError, "deit_soft_loss: `tau` must be > 0.0, got 0.0"),
        ("deit_soft_loss", {"tau": float("nan")}, ValueError, "deit_soft_loss: `tau` must be finite"),
        ("deit_soft_loss", {"alpha": 1.5}, ValueError, "deit_soft_loss: `alpha` must be <= 1.0, got 1.5"),
        ("deit_soft_loss", {"alpha": -0.1}, ValueError, "deit_soft_loss: `alpha` must be >= 0.0"),
        ("deit_soft_loss", {"alpha": "0.1"}, TypeError, "deit_soft_loss: `alpha` must be a real number"),
        ("deit_soft_loss", {"kl_normalization": "mean"}, ValueError, "deit_soft_loss: `kl_normalization` must be one"),
        ("deit_loss", {"distillation": "Hard"}, ValueError, "deit_loss: `distillation` must be one of"),
        ("deit_loss", {"tau": -1.0}, ValueError, "deit_loss: `tau` must be > 0.0, got -1.0"),
        ("deit_loss", {"kl_normalization": None}, ValueError, "deit_loss: `kl_normalization` must be one of"),
    ],
)
def test_bad_keywords(ns, conv, fn: str, kw: dict, exc: type, message: str) -> None:
    s, t, y = conv(S, T, Y)
    with pytest.raises(exc, match=re.escape(message)):
        _calls(ns, s, t, y)[fn](**kw)


@pytest.mark.parametrize(("ns", "conv"), TIERS)
@pytest.mark.parametrize("fn", ["deit_soft_loss", "deit_hard_loss", "deit_loss"])
def test_bad_arrays(ns, conv, fn: str) -> None:
    s, t, y = conv(S, T, Y)
    first = "cls_logits" if fn == "deit_loss" else "student_logits"
    cases = [
        (conv(S[:1], T, Y)[0], t, y, ValueError, "`teacher_logits` has shape (2, 3) but"),
        (conv(S[0], T[0], Y)[0], conv(T[0])[0], y, ValueError, "with at least 2 dimensions"),
        (s, t, conv(Y[:1])[0], ValueError, "`target` must have shape (2,)"),
        (s, t, conv(np.array([0, 3]))[0], ValueError, "`target` values must lie in [0, 2]"),
        (s, t, conv(np.array([-1, 0]))[0], ValueError, "`target` values must lie in [0, 2]"),
        (s, t, conv(Y.astype(np.float64))[0], TypeError, "`target` must hold integer class indices"),
        (conv(S.astype(np.int64))[0], t, y, TypeError, "must be a floating-point"),
        (s, conv(np.where(T > 1.5, np.nan, T))[0], y, ValueError, "`teacher_logits` must be finite"),
        (conv(np.where(S > 1.5, np.inf, S))[0], t, y, ValueError, f"`{first}` must be finite"),
        (conv(S[:, :1])[0], conv(T[:, :1])[0], conv(np.array([0, 0]))[0], ValueError, "at least 2 classes"),
    ]
    for s_, t_, y_, exc, message in cases:
        with pytest.raises(exc, match=re.escape(f"{fn}: ")) as info:
            _calls(ns, s_, t_, y_)[fn]()
        assert message in str(info.value), str(info.value)


def test_torch_rejects_lists_and_mixed_devices_and_head_shapes() -> None:
    s, t, y = _torch(S, T, Y)
    with pytest.raises(TypeError, match=r"deit_soft_loss: `student_logits` must be a torch.Tensor"):
        L.deit_soft_loss(S.tolist(), t, y)
    with pytest.raises(TypeError, match=r"deit_hard_loss: `target` must be a torch.Tensor"):
        L.deit_hard_loss(s, t, [0, 2])
    with pytest.raises(ValueError, match=r"deit_loss: `dist_logits` has shape \(2, 2\) but `cls_logits`"):
        L.deit_loss(s, s[:, :2], t, y)
    with pytest.raises(
        ValueError, match=r"deit_loss: `target` must have shape \(2,\) \(the leading dimensions of `cls"
    ):
        L.deit_loss(s, s, t, y[:1])
    with pytest.raises(ValueError, match=r"deit_predict: `fusion` must be one of"):
        L.deit_predict(s, s, fusion="mean")
    with pytest.raises(ValueError, match=r"deit_predict: `dist_logits` must be finite"):
        L.deit_predict(s, torch.full_like(s, float("nan")))
    with pytest.raises(ValueError, match=r"deit_teacher_labels: `teacher_logits` must have shape"):
        L.deit_teacher_labels(t[0])
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"deit_soft_loss: `teacher_logits` is on cuda"):
            L.deit_soft_loss(s, t.cuda(), y)


def test_reference_rejects_bad_fusion_and_grad_output() -> None:
    with pytest.raises(ValueError, match=r"deit_fusion_scores: `fusion` must be one of"):
        R.deit_fusion_scores(S, T, fusion="max")
    with pytest.raises(ValueError, match=r"deit_predict: `dist_logits` must be finite"):
        R.deit_predict(S, np.full_like(T, np.nan))
    with pytest.raises(ValueError, match=r"deit_hard_loss_grad: `grad_output` must have the loss's shape \(\)"):
        R.deit_hard_loss_grad(S, T, Y, grad_output=np.ones(2))
    with pytest.raises(ValueError, match=r"deit_loss_grad: `distillation` must be one of"):
        R.deit_loss_grad(S, S, T, Y, distillation="both")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_torch_dtypes_and_gradients(dtype: torch.dtype) -> None:
    """Half-precision inputs give float32 losses; float64 stays float64; every head gets a gradient."""
    c, d, t = (torch.as_tensor(x).to(dtype).requires_grad_() for x in (S, S[:, ::-1].copy(), T))
    y = torch.as_tensor(Y)
    expected = torch.float64 if dtype == torch.float64 else torch.float32
    for mode in ("hard", "soft", "none"):
        out = L.deit_loss(c, d, t, y, distillation=mode)
        assert out.dtype == expected and out.shape == ()
        gc, gd = torch.autograd.grad(out, (c, d))
        assert gc.dtype == dtype and gd.dtype == dtype
        assert (gd == 0).all() if mode == "none" else (gd != 0).any()
    assert L.deit_soft_loss(c, t, y).dtype == expected
    assert L.deit_hard_loss(c, t, y).dtype == expected
    assert L.deit_predict(c, d).dtype == torch.int64
    assert L.deit_fusion_scores(c, d, fusion="softmax_sum").dtype == expected


def test_leading_dimensions_are_samples() -> None:
    """(a, b, C) logits are a·b samples: the loss equals the loss of the flattened (a·b, C) batch."""
    rng = np.random.default_rng(3)
    s, t = rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 3, 5))
    y = rng.integers(0, 5, (2, 3))
    for ns, conv in ((R, lambda *x: x), (L, _torch)):
        a = ns.deit_soft_loss(*conv(s, t, y), kl_normalization="numel")
        b = ns.deit_soft_loss(*conv(s.reshape(6, 5), t.reshape(6, 5), y.reshape(6)), kl_normalization="numel")
        assert float(a) == pytest.approx(float(b), rel=1e-14)
        assert np.asarray(ns.deit_predict(*conv(s, t))).shape == (2, 3)


def test_teacher_labels_tie_to_lowest_index_in_both_tiers() -> None:
    t = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, -1.0, 0.0, 5.0]])
    assert R.deit_teacher_labels(t).tolist() == [1, 0, 3]
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        assert L.deit_teacher_labels(torch.as_tensor(t).to(dtype)).tolist() == [1, 0, 3]
    big = torch.zeros(4, 1000)
    big[:, [5, 700, 999]] = 1.0
    assert L.deit_teacher_labels(big).tolist() == [5] * 4


def test_torch_compile_fullgraph_without_graph_breaks() -> None:
    """torch.compile(fullgraph=True) traces every DeiT function (value checks are skipped inside the graph)."""
    s, t, y = _torch(S, T, Y)
    s = s.clone().requires_grad_()

    def f(s, t, y):
        soft = L.deit_loss(s, s * 0.5, t, y, distillation="soft", alpha=0.3, tau=2.0, kl_normalization="numel")
        return soft + L.deit_hard_loss(s, t, y), L.deit_predict(s, t, fusion="softmax_sum")

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    (loss, pred), (loss_c, pred_c) = f(s, t, y), compiled(s, t, y)
    torch.testing.assert_close(loss_c, loss)
    assert torch.equal(pred_c, pred)
    (g,) = torch.autograd.grad(loss_c, s)
    (g_eager,) = torch.autograd.grad(f(s, t, y)[0], s)
    torch.testing.assert_close(g, g_eager)


@pytest.mark.parametrize(("ns", "conv"), TIERS)
def test_hypothesis_finds_fusion_disagreements(ns, conv) -> None:
    """A search over 3-class two-head outputs finds inputs where late fusion and logit averaging disagree (T4)."""
    logit = st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 2))
    pair = st.tuples(st.lists(logit, min_size=3, max_size=3), st.lists(logit, min_size=3, max_size=3))

    def disagree(ab) -> bool:
        a, b = conv(np.array([ab[0]]), np.array([ab[1]]))
        return int(ns.deit_predict(a, b)[0]) != int(ns.deit_predict(a, b, fusion="softmax_sum")[0])

    found = find(
        pair,
        disagree,
        settings=settings(max_examples=5000, derandomize=True, database=None, suppress_health_check=list(HealthCheck)),
    )
    assert disagree(found)
