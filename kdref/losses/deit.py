"""DeiT distillation (Touvron et al., ICML 2021, arXiv:2012.12877) in PyTorch: soft, hard and two-head losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import (
    check_choice,
    check_logits_shape,
    check_pair,
    check_real,
    check_target_shape,
    check_temperature,
    fail,
)
from ..reference.deit import DISTILLATIONS, FUSIONS, KL_NORMALIZATIONS
from ._ops import check_finite, check_logits, check_target, compute_dtype, reduce

__all__ = [
    "deit_fusion_scores",
    "deit_hard_loss",
    "deit_loss",
    "deit_predict",
    "deit_soft_loss",
    "deit_teacher_labels",
]


def _tensors(fn: str, names: tuple[str, ...], xs: tuple[object, ...]) -> list[Tensor]:
    """Floating tensors of one valid (..., C) shape on one device (nothing is broadcast)."""
    ts = [check_logits(fn, n, x) for n, x in zip(names, xs)]
    for n, t in zip(names[1:], ts[1:]):
        check_pair(fn, ts[0].shape, t.shape, names[0], n)
        if t.device != ts[0].device:
            fail(fn, f"`{n}` is on {t.device} but `{names[0]}` is on {ts[0].device}; they must share a device")
    check_logits_shape(fn, names[0], ts[0].shape)
    return ts


def _argmax_lowest(x: Tensor) -> Tensor:
    """argmax over the last axis with ties resolved to the lowest index, explicitly (not left to the backend)."""
    C = x.shape[-1]
    idx = torch.arange(C, device=x.device).expand_as(x)
    return torch.where(x == x.amax(-1, keepdim=True), idx, C).amin(-1)


def _rows(x: Tensor, dtype: torch.dtype) -> Tensor:
    return x.reshape(-1, x.shape[-1]).to(dtype)


def _soft_kl_rows(s: Tensor, t: Tensor, tau: float) -> Tensor:
    """KL(σ(t/τ) ‖ σ(s/τ)) per row; where σ(t/τ) underflows to 0 its term is exactly 0."""
    log_p = torch.log_softmax(t / tau, -1)
    return (log_p.exp() * (log_p - torch.log_softmax(s / tau, -1))).sum(-1)


def _kl_scale(tau: float, C: int, kl_normalization: str) -> float:
    return tau * tau / (C if kl_normalization == "numel" else 1)


def deit_teacher_labels(teacher_logits: Tensor) -> Tensor:
    r"""y_t = argmax_c Z_t(c), the lowest such c on ties (Touvron et al. 2021, Eq. 3).

    Shape: (..., C) → (...) of int64. Ties are resolved explicitly to the lowest class index on every device
    (``np.argmax`` does the same, so the tiers agree).
    """
    fn = "deit_teacher_labels"
    (t,) = _tensors(fn, ("teacher_logits",), (teacher_logits,))
    check_finite(fn, {"teacher_logits": t})
    return _argmax_lowest(t.detach())


def deit_soft_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.1,
    tau: float = 3.0,
    kl_normalization: str = "batch",
) -> Tensor:
    r"""(1 − α)·CE(σ(s), y) + α·τ²·KL(σ(t/τ) ‖ σ(s/τ)), mean over samples (Touvron et al. 2021, Eq. 2).

    Argument order: Eq. (2) prints KL(ψ(Z_s/τ), ψ(Z_t/τ)), which under KL(P‖Q) = Σ P log(P/Q) is the reverse KL;
    the paper's text and the official code use KL(teacher ‖ student), which is what this computes.

    ``kl_normalization``: "batch" sums the KL over classes and averages it over samples (the paper); "numel"
    divides the summed KL by M·C, as the official code does, so its KL term is exactly the "batch" one / C.
    Defaults α = 0.1, τ = 3.0 are the paper's soft-distillation setting (the official code's defaults α = 0.5,
    τ = 1.0 go with its hard default; pass them explicitly to reproduce it).

    Shape:
        student_logits, teacher_logits: (N, C) or (..., C), C ≥ 2, every leading position a sample (M of them).
        target: (...) integer class indices. Output: a scalar, the mean over the M samples (there is no
        ``reduction``: the objective is a batch mean, and "numel" is defined only for it).

    Half-precision inputs are computed and returned in float32; float64 stays float64. The gradient flows to
    the student logits only (the teacher is detached).
    """
    fn = "deit_soft_loss"
    s, t = _tensors(fn, ("student_logits", "teacher_logits"), (student_logits, teacher_logits))
    alpha = check_real(fn, "alpha", alpha, low=0.0, high=1.0)
    tau = check_temperature(fn, tau, name="tau")
    scale = _kl_scale(tau, s.shape[-1], check_choice(fn, "kl_normalization", kl_normalization, KL_NORMALIZATIONS))
    y = check_target(fn, target, s)
    dt = compute_dtype(s, t)
    s2, t2 = _rows(s, dt), _rows(t.detach(), dt)
    rows = (1.0 - alpha) * F.cross_entropy(s2, y, reduction="none") + alpha * scale * _soft_kl_rows(s2, t2, tau)
    return reduce(fn, rows, "mean", s.shape[:-1], {"student_logits": s, "teacher_logits": t})


def deit_hard_loss(student_logits: Tensor, teacher_logits: Tensor, target: Tensor) -> Tensor:
    r"""½·CE(σ(s), y) + ½·CE(σ(s), y_t), y_t = argmax t, mean over samples (Touvron et al. 2021, Eq. 3).

    Equals the cross-entropy against the two-hot target ½e_y + ½e_{y_t}. The student is at temperature 1 and
    there is no τ² (this is not the τ → 0 limit of Eq. 2). Ties in the teacher's argmax go to the lowest class
    index (see :func:`deit_teacher_labels`).

    Shape:
        student_logits, teacher_logits: (N, C) or (..., C); target: (...). Output: a scalar (mean over samples).

    Half-precision inputs are computed and returned in float32; float64 stays float64. The teacher receives no
    gradient (its argmax is piecewise constant and it is detached).
    """
    fn = "deit_hard_loss"
    s, t = _tensors(fn, ("student_logits", "teacher_logits"), (student_logits, teacher_logits))
    y = check_target(fn, target, s)
    check_finite(fn, {"teacher_logits": t})
    s2 = _rows(s, compute_dtype(s, t))
    y_t = _argmax_lowest(t.detach()).reshape(-1)
    rows = 0.5 * F.cross_entropy(s2, y, reduction="none") + 0.5 * F.cross_entropy(s2, y_t, reduction="none")
    return reduce(fn, rows, "mean", s.shape[:-1], {"student_logits": s, "teacher_logits": t})


def deit_loss(
    cls_logits: Tensor,
    dist_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor,
    *,
    distillation: str = "hard",
    alpha: float = 0.5,
    tau: float = 1.0,
    kl_normalization: str = "batch",
) -> Tensor:
    r"""(1 − α)·CE(σ(Z_cls), y) + α·L_dist(Z_dist, Z_t), mean over samples (Touvron et al. 2021, §4, two heads).

    L_dist is CE(σ(Z_dist), argmax Z_t) for ``distillation="hard"`` (the README's distilled recipe, default) and
    τ²·KL(σ(Z_t/τ) ‖ σ(Z_dist/τ)) for "soft" (normalised per ``kl_normalization`` as in :func:`deit_soft_loss`);
    "none" is CE(σ(Z_cls), y) alone (α, τ unused; ``dist_logits`` gets a zero gradient). α = 0.5 and τ = 1.0 are the
    official ``main.py`` defaults. Note that α weights the *distillation* term here, whereas Hinton's ``lam``
    weights the hard-label term.

    Shape:
        cls_logits, dist_logits, teacher_logits: (N, C) or (..., C), all the same shape; target: (...).
        Output: a scalar (mean over samples).

    Half-precision inputs are computed and returned in float32; float64 stays float64. Gradients flow to both
    heads and never to the teacher.
    """
    fn = "deit_loss"
    c, d, t = _tensors(fn, ("cls_logits", "dist_logits", "teacher_logits"), (cls_logits, dist_logits, teacher_logits))
    distillation = check_choice(fn, "distillation", distillation, DISTILLATIONS)
    alpha = check_real(fn, "alpha", alpha, low=0.0, high=1.0)
    tau = check_temperature(fn, tau, name="tau")
    scale = _kl_scale(tau, c.shape[-1], check_choice(fn, "kl_normalization", kl_normalization, KL_NORMALIZATIONS))
    if isinstance(target, Tensor):
        check_target_shape(fn, target.shape, c.shape, "cls_logits")
        if target.device != c.device:
            fail(fn, f"`target` is on {target.device} but `cls_logits` is on {c.device}; they must share a device")
    y = check_target(fn, target, c)
    dt = compute_dtype(c, d, t)
    c2, d2, t2 = _rows(c, dt), _rows(d, dt), _rows(t.detach(), dt)
    base = F.cross_entropy(c2, y, reduction="none")
    inputs = {"cls_logits": c, "dist_logits": d, "teacher_logits": t}
    if distillation == "none":
        rows = base + (d2 * 0.0).sum(-1)  # keeps dist_logits in the graph: its gradient is 0, not None
    elif distillation == "hard":
        check_finite(fn, {"teacher_logits": t})
        rows = (1.0 - alpha) * base + alpha * F.cross_entropy(d2, _argmax_lowest(t2), reduction="none")
    else:
        rows = (1.0 - alpha) * base + alpha * scale * _soft_kl_rows(d2, t2, tau)
    return reduce(fn, rows, "mean", c.shape[:-1], inputs)


def _fusion_inputs(fn: str, cls_logits: Tensor, dist_logits: Tensor, fusion: str) -> tuple[Tensor, Tensor, str]:
    c, d = _tensors(fn, ("cls_logits", "dist_logits"), (cls_logits, dist_logits))
    fusion = check_choice(fn, "fusion", fusion, FUSIONS)
    check_finite(fn, {"cls_logits": c, "dist_logits": d})
    return c, d, fusion


def _fused(c: Tensor, d: Tensor, fusion: str) -> Tensor:
    dt = compute_dtype(c, d)
    c, d = c.to(dt), d.to(dt)
    return (c + d) / 2.0 if fusion == "logit_mean" else torch.softmax(c, -1) + torch.softmax(d, -1)


def deit_fusion_scores(cls_logits: Tensor, dist_logits: Tensor, *, fusion: str = "logit_mean") -> Tensor:
    r"""(Z_cls + Z_dist)/2 for "logit_mean" (the official inference) or σ(Z_cls) + σ(Z_dist) for "softmax_sum"
    (the paper's late fusion) (Touvron et al. 2021, §4).

    Shape: (..., C) each → (..., C), in float32 for half-precision inputs (float64 stays float64).
    """
    c, d, fusion = _fusion_inputs("deit_fusion_scores", cls_logits, dist_logits, fusion)
    return _fused(c, d, fusion)


def deit_predict(cls_logits: Tensor, dist_logits: Tensor, *, fusion: str = "logit_mean") -> Tensor:
    r"""argmax_c of :func:`deit_fusion_scores`, ties to the lowest index (Touvron et al. 2021, late fusion).

    ``fusion="logit_mean"`` (default) is what the official model returns at inference, ``"softmax_sum"`` is what
    the paper describes; their argmaxes differ on some inputs.

    Shape: cls_logits, dist_logits (..., C) → (...) int64 class indices. No gradient.
    """
    c, d, fusion = _fusion_inputs("deit_predict", cls_logits, dist_logits, fusion)
    with torch.no_grad():
        return _argmax_lowest(_fused(c.detach(), d.detach(), fusion))
