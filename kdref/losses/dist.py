"""DIST (Huang et al., NeurIPS 2022, arXiv:2205.10536) in PyTorch: Pearson relation losses with explicit ε modes."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_real, fail
from ..reference.dist import check_eps
from ._fused import DISTLoss, fused_enabled
from ._ops import check_finite, check_logits, check_tensor_pair, compute_dtype, reduce

__all__ = ["dist_loss", "inter_class_relation", "intra_class_relation", "pearson"]


#: Zero variance in "exact" mode: every centred entry within this many units of roundoff of the input's magnitude.
NOISE_ULPS = 16.0


def _scaled(a: Tensor, floor: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """a = m·a' along the last axis: (zero mask, m, a', ‖a'‖), m = max|a| (1 where a counts as 0), m held constant.

    ``floor``: the largest max|a| that counts as zero variance (None: only a = 0 exactly).
    """
    m = a.detach().abs().amax(-1, keepdim=True)
    zero = m == 0 if floor is None else m <= floor
    m = torch.where(zero, torch.ones_like(m), m)
    # Below a rounding floor the vector is set to 0 (no gradient); an exact 0 keeps its gradient (the ε modes).
    a1 = a / m if floor is None else torch.where(zero, torch.zeros_like(a), a / m)
    ss = (a1 * a1).sum(-1, keepdim=True)
    # sqrt has an infinite derivative at 0: only take it where a ≠ 0 (a NaN compares unequal to 0 and propagates).
    n = torch.where(zero, torch.zeros_like(ss), torch.where(zero, torch.ones_like(ss), ss).sqrt())
    return zero, m, a1, n


def _rho(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor], mode: str, eps: float) -> Tensor:
    """ρ over the last axis of centred (vector, floor) pairs; autograd gives the reference gradient in every mode."""
    exact = mode == "exact"
    za, ma, a1, na = _scaled(a[0], a[1] if exact else None)
    zb, mb, b1, nb = _scaled(b[0], b[1] if exact else None)
    one = torch.ones_like(na)
    if exact:
        cos = (a1 / torch.where(za, one, na) * (b1 / torch.where(zb, one, nb))).sum(-1)
        return torch.where((za | zb)[..., 0], torch.zeros_like(cos), cos)
    if mode == "product_add":
        delta = (eps / ma / mb).clamp_min(torch.finfo(na.dtype).tiny)
        return (a1 * b1).sum(-1) / (na * nb + delta)[..., 0]
    # norm_clamp: the value of torch.nn.functional.cosine_similarity (each norm clamped at ε) and its gradient, which
    # treats the clamped norm as ‖a‖: the clamp enters as a constant offset (straight through).
    da = na + (torch.maximum(na, eps / ma) - na).detach()
    db = nb + (torch.maximum(nb, eps / mb) - nb).detach()
    return (a1 / da * (b1 / db)).sum(-1)


def _centre(x: Tensor) -> tuple[Tensor, Tensor]:
    """(x − mean(x), rounding floor) along the last axis, the mean taken on x/max|x| so no sum overflows."""
    big = x.detach().abs().amax(-1, keepdim=True)
    m = torch.where(big == 0, torch.ones_like(big), big)
    return x - m * (x / m).mean(-1, keepdim=True), NOISE_ULPS * torch.finfo(x.dtype).eps * big


def pearson(x: Tensor, y: Tensor, *, dim: int = -1, eps_mode: str = "exact", eps: float = 1e-8) -> Tensor:
    r"""Pearson correlation ρ(x, y) = ⟨x − x̄, y − ȳ⟩/(‖x − x̄‖·‖y − ȳ‖) along ``dim`` (Huang et al. 2022, Eq. 6).

    Shape:
        x, y: any shape with at least one dimension, identical (nothing is broadcast). Output: the shape with
        ``dim`` removed.

    ``eps_mode``: "exact" (default; a zero-variance vector gets ρ = 0 and gradient 0), "product_add" (the official
    DIST code: ε added to the product of the norms) or "norm_clamp" (torch.nn.functional.cosine_similarity: each norm
    clamped at ε). Norms are formed from entries scaled into [−1, 1], so extreme scales neither overflow nor
    underflow. Half-precision inputs are computed and returned in float32; float64 stays float64. Gradients flow to
    both arguments.
    """
    fn = "pearson"
    a = check_logits(fn, "x", x)
    b = check_logits(fn, "y", y)
    if a.dim() < 1:
        fail(fn, f"`x` must have at least 1 dimension, got shape {tuple(a.shape)}")
    if a.shape != b.shape:
        fail(
            fn,
            f"`y` has shape {tuple(b.shape)} but `x` has shape {tuple(a.shape)}; they must match exactly "
            "(nothing is broadcast)",
        )
    if a.device != b.device:
        fail(fn, f"`y` is on {b.device} but `x` is on {a.device}; they must share a device")
    if isinstance(dim, bool) or not isinstance(dim, int):
        fail(fn, f"`dim` must be an integer, got {type(dim).__name__} {dim!r}", TypeError)
    if not -a.dim() <= dim < a.dim():
        fail(fn, f"`dim` must lie in [{-a.dim()}, {a.dim() - 1}] for shape {tuple(a.shape)}, got {dim}")
    if a.numel() == 0:
        fail(fn, f"`x` must hold at least one element, got shape {tuple(a.shape)}")
    mode, e = check_eps(fn, eps_mode, eps)
    check_finite(fn, {"x": a, "y": b})
    dt = compute_dtype(a, b)
    rho = _rho(_centre(a.to(dt).movedim(dim, -1)), _centre(b.to(dt).movedim(dim, -1)), mode, e)
    return reduce(fn, rho, "none", rho.shape, {"x": x, "y": y})


def _probs(fn: str, student: Tensor, teacher: Tensor, tau: float, eps_mode: str, eps: float, *, matrix: bool):
    s, t = check_tensor_pair(fn, student, teacher)
    if matrix and s.dim() != 2:
        fail(
            fn,
            "`student_logits` must have shape (N, C) exactly (the intra-class term correlates each class over the "
            f"batch axis, so leading axes cannot be flattened silently), got shape {tuple(s.shape)}",
        )
    tau = check_real(fn, "tau", tau, low=0.0, low_open=True)
    mode, e = check_eps(fn, eps_mode, eps)
    check_finite(fn, {"student_logits": s, "teacher_logits": t})
    dt = compute_dtype(s, t)
    C = s.shape[-1]
    return s.reshape(-1, C).to(dt) / tau, t.detach().reshape(-1, C).to(dt) / tau, tau, mode, e


def _dist_plain(x: Tensor, z: Tensor, coef: float, beta: float | None, gamma: float | None, mode: str, eps: float):
    """coef·(β·inter + γ·intra) of softmax(x), softmax(z) in plain ops; a None weight leaves its term out."""
    ys, yt = torch.softmax(x, -1), torch.softmax(z, -1)
    inter = None if beta is None else beta * _inter_rows(ys, yt, mode, eps).mean()
    intra = None if gamma is None else gamma * _intra_columns(ys, yt, mode, eps).mean()
    return coef * (inter if intra is None else intra if inter is None else inter + intra)  # type: ignore[operator]


def _dist_kernel(x: Tensor, z: Tensor, coef: float, beta: float | None, gamma: float | None, mode: str, eps: float):
    """The eager kernel: the fused Function in "exact" mode (one saved (N, C) gradient) unless turned off."""
    if mode == "exact" and fused_enabled():
        return DISTLoss.apply(x, z, coef, beta, gamma)
    return _dist_plain(x, z, coef, beta, gamma, mode, eps)


def _inter_rows(ys: Tensor, yt: Tensor, mode: str, eps: float) -> Tensor:
    """1 − ρ per row; rows are centred by their computed mean (1/C up to the rounding of the softmax's normaliser)."""
    return 1.0 - _rho(_centre(ys), _centre(yt), mode, eps)


def _intra_columns(ys: Tensor, yt: Tensor, mode: str, eps: float) -> Tensor:
    """1 − ρ per class column, over the batch axis: the inter term of the transposes (P9)."""
    return 1.0 - _rho(_centre(ys.T), _centre(yt.T), mode, eps)


def _inputs(s: Tensor, t: Tensor) -> dict[str, Tensor]:
    return {"student_logits": s, "teacher_logits": t}


def _inter(student_logits, teacher_logits, tau, eps_mode, eps, kernel=_dist_kernel) -> Tensor:
    fn = "inter_class_relation"
    x, z, _, mode, e = _probs(fn, student_logits, teacher_logits, tau, eps_mode, eps, matrix=False)
    loss = kernel(x, z, 1.0, 1.0, None, mode, e)
    return reduce(fn, loss, "none", torch.Size([]), _inputs(student_logits, teacher_logits))


def _intra(student_logits, teacher_logits, tau, eps_mode, eps, kernel=_dist_kernel) -> Tensor:
    fn = "intra_class_relation"
    x, z, _, mode, e = _probs(fn, student_logits, teacher_logits, tau, eps_mode, eps, matrix=True)
    loss = kernel(x, z, 1.0, None, 1.0, mode, e)
    return reduce(fn, loss, "none", torch.Size([]), _inputs(student_logits, teacher_logits))


def _dist(student_logits, teacher_logits, beta, gamma, tau, eps_mode, eps, kernel=_dist_kernel) -> Tensor:
    fn = "dist_loss"
    beta = check_real(fn, "beta", beta, low=0.0)
    gamma = check_real(fn, "gamma", gamma, low=0.0)
    x, z, tau, mode, e = _probs(fn, student_logits, teacher_logits, tau, eps_mode, eps, matrix=True)
    loss = kernel(x, z, tau * tau, beta, gamma, mode, e)
    return reduce(fn, loss, "none", torch.Size([]), _inputs(student_logits, teacher_logits))


def inter_class_relation(
    student_logits: Tensor, teacher_logits: Tensor, *, tau: float = 1.0, eps_mode: str = "exact", eps: float = 1e-8
) -> Tensor:
    r"""Inter-class relation 1 − (1/B)·Σ_i ρ(σ(s_i/τ), σ(t_i/τ)), row by row (Huang et al. 2022, Eq. 8), no τ².

    Shape:
        student_logits, teacher_logits: (N, C) or (..., C), C ≥ 2; leading axes are flattened into rows (the term
        is a mean over rows, so it is separable over the batch). Output: a scalar in [0, 2].

    A uniform row has no direction and contributes ρ = 0 ("exact" mode; the ε modes give the same value). For C = 2
    every row's ρ is ±1 (or 0). Half-precision inputs are computed and returned in float32; float64 stays float64.
    The gradient flows to the student only; the argument order is student first, but ρ is symmetric.
    """
    return _inter(student_logits, teacher_logits, tau, eps_mode, eps)


def intra_class_relation(
    student_logits: Tensor, teacher_logits: Tensor, *, tau: float = 1.0, eps_mode: str = "exact", eps: float = 1e-8
) -> Tensor:
    r"""Intra-class relation 1 − (1/C)·Σ_j ρ(Y_s[:, j], Y_t[:, j]) over the batch (Huang et al. 2022, Eq. 9), no τ².

    Shape:
        student_logits, teacher_logits: exactly (N, C), C ≥ 2: each class column is correlated over the batch axis,
        so the value depends on the whole batch (see :mod:`kdref.losses.distributed` for data-parallel training).
        Output: a scalar in [0, 2].

    N = 1 gives exactly 1 with zero gradient (a one-entry column has no variance); N = 2 makes each column's ρ equal
    to ±1 or 0. Half-precision inputs are computed and returned in float32; the gradient flows to the student only.
    """
    return _intra(student_logits, teacher_logits, tau, eps_mode, eps)


def dist_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    beta: float = 2.0,
    gamma: float = 2.0,
    tau: float = 1.0,
    eps_mode: str = "exact",
    eps: float = 1e-8,
) -> Tensor:
    r"""DIST loss τ²·(β·inter + γ·intra) (Huang et al. 2022, Eq. 10, with the τ² of the official code).

    Defaults β = γ = 2, τ = 1: the official ImageNet setting (class weights β = γ = 1 times the config's loss weight
    2); the CIFAR configs use τ = 4. The paper's appendix pseudo-code has no τ², which matters only for τ ≠ 1.

    Shape:
        student_logits, teacher_logits: exactly (N, C), C ≥ 2. Output: a scalar in [0, 2·τ²·(β + γ)].

    ``eps_mode`` selects "exact" Pearson (default), the official "product_add" or torchdistill's "norm_clamp".
    Half-precision inputs are computed and returned in float32; float64 stays float64. The gradient flows to the
    student only. Under data parallelism use :func:`kdref.losses.distributed.dist_loss` for the global-batch
    intra term.
    """
    return _dist(student_logits, teacher_logits, beta, gamma, tau, eps_mode, eps)
