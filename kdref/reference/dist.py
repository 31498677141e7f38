"""DIST (Huang et al., NeurIPS 2022, arXiv:2205.10536) in NumPy float64, with analytic gradients.

Pearson correlation is the cosine of the centred vectors. Each centred vector a is written a = m·a' with m = max|a|,
so norms and dot products are formed from entries in [−1, 1] (no overflow or underflow of the sums of squares);
ρ is then assembled from the unit vectors. A zero-variance vector (constant, or a uniform probability row) has no
direction: kdref defines ρ = 0 there (d = 1, the official code's limiting value) with gradient 0 in "exact" mode.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .._checks import check_real, fail
from ._ops import Array, as_logits, as_pair, log_softmax

__all__ = [
    "dist_loss",
    "dist_loss_grad",
    "inter_class_relation",
    "inter_class_relation_grad",
    "intra_class_relation",
    "intra_class_relation_grad",
    "pearson",
    "pearson_grad",
]

#: "exact": ρ = ⟨ā, b̄⟩/(‖ā‖‖b̄‖); "product_add": ⟨ā, b̄⟩/(‖ā‖‖b̄‖ + ε) (official DIST, VanillaKD);
#: "norm_clamp": ⟨ā, b̄⟩/(max(‖ā‖, ε)·max(‖b̄‖, ε)) (torchdistill via torch.nn.functional.cosine_similarity).
EPS_MODES = ("exact", "product_add", "norm_clamp")


def check_eps(fn: str, eps_mode: Any, eps: Any) -> tuple[str, float]:
    """A known ``eps_mode`` and a finite ``eps`` > 0 (checked in every mode, used by the two ε modes)."""
    if not isinstance(eps_mode, str) or eps_mode not in EPS_MODES:
        fail(fn, f"`eps_mode` must be one of {EPS_MODES}, got {eps_mode!r}")
    return eps_mode, check_real(fn, "eps", eps, low=0.0, low_open=True)


#: In "exact" mode a centred vector whose entries are all within this many units of roundoff of the uncentred
#: vector's largest entry is indistinguishable from a constant one (its direction is rounding noise): ρ = 0 there.
NOISE_ULPS = 16.0


class _Scaled:
    """A centred vector (last axis) as a = m·a': m = max|a| (1 where a counts as 0), n' = ‖a'‖, unit â (0 at a = 0).

    ``floor`` is the largest max|a| that counts as zero variance: 0 in the ε modes, the rounding level in "exact".
    """

    def __init__(self, a: Array, floor: Array | float):
        m = np.max(np.abs(a), axis=-1, keepdims=True)
        self.zero = m <= floor
        self.m = np.where(self.zero, 1.0, m)
        self.a = np.where(self.zero, 0.0, a / self.m)
        self.n = np.sqrt(np.sum(self.a * self.a, axis=-1, keepdims=True))
        self.unit = self.a / np.where(self.zero, 1.0, self.n)


def _rho_and_grad(a: Centred, b: Centred, mode: str, eps: float) -> tuple[Array, Array]:
    """ρ(a, b) over the last axis (kept as size 1) and ∂ρ/∂a, for centred a and b."""
    exact = mode == "exact"
    A, B = _Scaled(a.a, a.floor if exact else 0.0), _Scaled(b.a, b.floor if exact else 0.0)
    zero = A.zero | B.zero
    cos = np.sum(A.unit * B.unit, axis=-1, keepdims=True)
    if mode == "exact":
        rho = np.where(zero, 0.0, cos)
        # ∂ρ/∂a = (b̂ − ρ·â)/‖a‖.
        grad = np.where(zero, 0.0, (B.unit - rho * A.unit) / (A.m * np.where(A.zero, 1.0, A.n)))
    elif mode == "product_add":
        # ⟨a, b⟩/(‖a‖‖b‖ + ε) = ⟨a', b'⟩/(n_a'·n_b' + δ) with δ = ε/(m_a·m_b).
        delta = np.maximum(eps / A.m / B.m, np.finfo(np.float64).tiny)  # never 0, so 0/0 cannot occur
        den = A.n * B.n + delta
        rho = np.sum(A.a * B.a, axis=-1, keepdims=True) / den
        # ∂ρ/∂a = (b − ρ‖b‖â)/(‖a‖‖b‖ + ε); at a = 0 this is b/ε (ρ is differentiable there).
        grad = (B.a - rho * B.n * A.unit) / (A.m * den)
    else:
        # torch's cosine_similarity: each norm clamped at ε; its gradient treats the clamped norm as ‖a‖ (the clamp
        # is applied without autograd), so ∂ρ/∂a = (b̃ − ρ·â)/max(‖a‖, ε) with b̃ = b/max(‖b‖, ε).
        da = np.maximum(A.n, eps / A.m)
        db = np.maximum(B.n, eps / B.m)
        b_tilde = B.a / db
        rho = np.sum(A.a / da * b_tilde, axis=-1, keepdims=True)
        grad = (b_tilde - rho * A.unit) / (A.m * da)
    return rho, grad


class Centred:
    """x − mean(x) along the last axis (the mean taken on x/max|x|, so no sum overflows), and its rounding floor."""

    def __init__(self, x: Array):
        m = np.max(np.abs(x), axis=-1, keepdims=True)
        m = np.where(m == 0.0, 1.0, m)
        self.a = x - m * np.mean(x / m, axis=-1, keepdims=True)
        self.floor = NOISE_ULPS * np.finfo(np.float64).eps * np.max(np.abs(x), axis=-1, keepdims=True)


def _centre(x: Array) -> Array:
    return Centred(x).a


def _pearson_args(fn: str, x: Any, y: Any, dim: Any, eps_mode: Any, eps: Any) -> tuple[Array, Array, int, str, float]:
    a = as_logits(fn, "x", x)
    b = as_logits(fn, "y", y)
    if a.ndim < 1:
        fail(fn, f"`x` must have at least 1 dimension, got shape {a.shape}")
    if a.shape != b.shape:
        fail(fn, f"`y` has shape {b.shape} but `x` has shape {a.shape}; they must match exactly (nothing is broadcast)")
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        fail(fn, f"`dim` must be an integer, got {type(dim).__name__} {dim!r}", TypeError)
    d = operator.index(dim)
    if not -a.ndim <= d < a.ndim:
        fail(fn, f"`dim` must lie in [{-a.ndim}, {a.ndim - 1}] for shape {a.shape}, got {d}")
    if a.size == 0:
        fail(fn, f"`x` must hold at least one element, got shape {a.shape}")
    mode, e = check_eps(fn, eps_mode, eps)
    return np.moveaxis(a, d, -1), np.moveaxis(b, d, -1), d, mode, e


def pearson(x: Any, y: Any, *, dim: int = -1, eps_mode: str = "exact", eps: float = 1e-8) -> Array:
    """ρ(x, y) = ⟨x − x̄, y − ȳ⟩/(‖x − x̄‖‖y − ȳ‖) along ``dim`` (Huang et al. 2022, Eq. 6); 0 at zero variance."""
    a, b, _, mode, e = _pearson_args("pearson", x, y, dim, eps_mode, eps)
    rho, _ = _rho_and_grad(Centred(a), Centred(b), mode, e)
    return rho[..., 0]


def pearson_grad(
    x: Any, y: Any, *, dim: int = -1, eps_mode: str = "exact", eps: float = 1e-8, grad_output: Any = None
) -> Array:
    """∂ρ/∂x = (ŷ − ρ·x̂)/‖x − x̄‖ in "exact" mode (x̂, ŷ the standardised vectors), times ``grad_output``."""
    fn = "pearson_grad"
    a, b, d, mode, e = _pearson_args(fn, x, y, dim, eps_mode, eps)
    _, g = _rho_and_grad(Centred(a), Centred(b), mode, e)
    g = _centre(g)  # the chain rule through the centring (a no-op up to rounding: g is already centred)
    return np.moveaxis(_cotangent(fn, g.shape[:-1], grad_output)[..., None] * g, -1, d)


def _cotangent(fn: str, shape: tuple[int, ...], grad_output: Any) -> Array:
    if grad_output is None:
        return np.ones(shape)
    g = np.asarray(grad_output, dtype=np.float64)
    if g.shape != tuple(shape):
        fail(fn, f"`grad_output` must have the output's shape {tuple(shape)}, got {g.shape}")
    return g


def _scalar_cotangent(fn: str, grad_output: Any) -> float:
    return float(_cotangent(fn, (), grad_output))


def _probs(fn: str, student: Any, teacher: Any, tau: Any, eps_mode: Any, eps: Any, *, matrix: bool):
    """Validated softmax rows Y_s = σ(s/τ), Y_t = σ(t/τ) as (M, C), τ, ε mode and ε."""
    s, t = as_pair(fn, student, teacher)
    if matrix and s.ndim != 2:
        fail(
            fn,
            f"`student_logits` must have shape (N, C) exactly (the intra-class term correlates each class over the "
            f"batch axis, so leading axes cannot be flattened silently), got shape {s.shape}",
        )
    tau = check_real(fn, "tau", tau, low=0.0, low_open=True)
    mode, e = check_eps(fn, eps_mode, eps)
    C = s.shape[-1]
    ys = np.exp(log_softmax(s.reshape(-1, C) / tau))
    yt = np.exp(log_softmax(t.reshape(-1, C) / tau))
    return ys, yt, tau, mode, e


def _softmax_vjp(y: Array, g: Array, tau: float) -> Array:
    """(∂σ(z/τ)/∂z)ᵀ g = y ⊙ (g − ⟨g, y⟩)/τ, row by row."""
    return y * (g - np.sum(g * y, axis=-1, keepdims=True)) / tau


def _inter(ys: Array, yt: Array, mode: str, eps: float) -> tuple[float, Array]:
    """1 − mean_i ρ(Y_s[i], Y_t[i]) and its gradient w.r.t. Y_s.

    A softmax row has mean 1/C, but it is centred by its computed mean: that removes the rounding of the softmax's
    normaliser, a constant offset that would otherwise be all there is of a (near-)uniform row.
    """
    rho, g = _rho_and_grad(Centred(ys), Centred(yt), mode, eps)
    M = ys.shape[0]
    return 1.0 - float(np.mean(rho)), -g / M


def _intra(ys: Array, yt: Array, mode: str, eps: float) -> tuple[float, Array]:
    """1 − mean_j ρ(Y_s[:, j], Y_t[:, j]) and its gradient w.r.t. Y_s: the inter term of the transposes (P9)."""
    rho, g = _rho_and_grad(Centred(ys.T), Centred(yt.T), mode, eps)
    C = ys.shape[-1]
    return 1.0 - float(np.mean(rho)), -_centre(g).T / C


def inter_class_relation(
    student_logits: Any, teacher_logits: Any, *, tau: float = 1.0, eps_mode: str = "exact", eps: float = 1e-8
) -> Array:
    """1 − (1/B)·Σ_i ρ(σ(s_i/τ), σ(t_i/τ)) over rows, no τ² (Huang et al. 2022, Eq. 8); (..., C) rows flattened."""
    ys, yt, _, mode, e = _probs(
        "inter_class_relation", student_logits, teacher_logits, tau, eps_mode, eps, matrix=False
    )
    return np.asarray(_inter(ys, yt, mode, e)[0])


def inter_class_relation_grad(
    student_logits: Any,
    teacher_logits: Any,
    *,
    tau: float = 1.0,
    eps_mode: str = "exact",
    eps: float = 1e-8,
    grad_output: Any = None,
) -> Array:
    """∂inter/∂s_i = −(1/B)·J_σᵀ ∂ρ_i/∂Y_s[i] with J_σᵀg = y ⊙ (g − ⟨g, y⟩)/τ (Huang et al. 2022)."""
    fn = "inter_class_relation_grad"
    ys, yt, tau, mode, e = _probs(fn, student_logits, teacher_logits, tau, eps_mode, eps, matrix=False)
    g = _scalar_cotangent(fn, grad_output)
    return (g * _softmax_vjp(ys, _inter(ys, yt, mode, e)[1], tau)).reshape(np.shape(student_logits))


def intra_class_relation(
    student_logits: Any, teacher_logits: Any, *, tau: float = 1.0, eps_mode: str = "exact", eps: float = 1e-8
) -> Array:
    """1 − (1/C)·Σ_j ρ(Y_s[:, j], Y_t[:, j]) over class columns, no τ² (Huang et al. 2022, Eq. 9); (N, C) only."""
    ys, yt, _, mode, e = _probs("intra_class_relation", student_logits, teacher_logits, tau, eps_mode, eps, matrix=True)
    return np.asarray(_intra(ys, yt, mode, e)[0])


def intra_class_relation_grad(
    student_logits: Any,
    teacher_logits: Any,
    *,
    tau: float = 1.0,
    eps_mode: str = "exact",
    eps: float = 1e-8,
    grad_output: Any = None,
) -> Array:
    """∂intra/∂s = J_σᵀ of −(1/C)·∂ρ_j/∂Y_s[:, j], column by column (Huang et al. 2022)."""
    fn = "intra_class_relation_grad"
    ys, yt, tau, mode, e = _probs(fn, student_logits, teacher_logits, tau, eps_mode, eps, matrix=True)
    g = _scalar_cotangent(fn, grad_output)
    return g * _softmax_vjp(ys, _intra(ys, yt, mode, e)[1], tau)


def _weights(fn: str, beta: Any, gamma: Any) -> tuple[float, float]:
    return check_real(fn, "beta", beta, low=0.0), check_real(fn, "gamma", gamma, low=0.0)


def dist_loss(
    student_logits: Any,
    teacher_logits: Any,
    *,
    beta: float = 2.0,
    gamma: float = 2.0,
    tau: float = 1.0,
    eps_mode: str = "exact",
    eps: float = 1e-8,
) -> Array:
    """τ²·(β·inter + γ·intra) (Huang et al. 2022, Eq. 10 with the official τ²; β = γ = 2, τ = 1 as on ImageNet)."""
    fn = "dist_loss"
    beta, gamma = _weights(fn, beta, gamma)
    ys, yt, tau, mode, e = _probs(fn, student_logits, teacher_logits, tau, eps_mode, eps, matrix=True)
    return np.asarray(tau * tau * (beta * _inter(ys, yt, mode, e)[0] + gamma * _intra(ys, yt, mode, e)[0]))


def dist_loss_grad(
    student_logits: Any,
    teacher_logits: Any,
    *,
    beta: float = 2.0,
    gamma: float = 2.0,
    tau: float = 1.0,
    eps_mode: str = "exact",
    eps: float = 1e-8,
    grad_output: Any = None,
) -> Array:
    """τ²·(β·∂inter/∂s + γ·∂intra/∂s) (Huang et al. 2022)."""
    fn = "dist_loss_grad"
    beta, gamma = _weights(fn, beta, gamma)
    ys, yt, tau, mode, e = _probs(fn, student_logits, teacher_logits, tau, eps_mode, eps, matrix=True)
    g = _scalar_cotangent(fn, grad_output)
    gy = beta * _inter(ys, yt, mode, e)[1] + gamma * _intra(ys, yt, mode, e)[1]
    return g * tau * tau * _softmax_vjp(ys, gy, tau)
