"""Function matching (Beyer et al., CVPR 2022): SymPy proofs (optimum = teacher, mixup fold) and an mpmath oracle."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import sympy as sp

from ._ops import (
    combine_residuals,
    evaluate_grad,
    evaluate_loss,
    mp,
    mp_kl_from_logs,
    mp_log_softmax,
    simplify_residual,
    symbols,
    tempered_softmax,
)
from .hinton import kd_expr

__all__ = [
    "folded_beta_density",
    "funmatch_expr",
    "funmatch_loss",
    "funmatch_loss_grad",
    "mixup_linearity_gap",
    "prove_folded_beta_density",
    "prove_funmatch_gradient",
    "prove_gibbs_certificate",
    "prove_hessian_is_softmax_covariance",
    "prove_mixup_fold_symmetry",
    "prove_mixup_linearity_gap",
    "prove_mixup_swap",
    "prove_optimum_is_teacher",
    "prove_softmax_covariance_is_psd",
]

# ---------------------------------------------------------------------------------------------------------
# SymPy expressions
# ---------------------------------------------------------------------------------------------------------


def funmatch_expr(z: Sequence[sp.Expr], v: Sequence[sp.Expr], T: sp.Expr) -> sp.Expr:
    """T²·KL(σ_T(v) ‖ σ_T(z)) for one sample (Beyer et al. 2022, Eq. 1 with the code's T²)."""
    return kd_expr(z, v, T)


def fold(a: sp.Expr) -> sp.Expr:
    """max(a, 1 − a): big_vision's fold of the mixup coefficient."""
    return sp.Max(a, 1 - a)


def folded_beta_density(x: sp.Expr, p: sp.Expr) -> sp.Expr:
    """Density of max(b, 1 − b), b ~ Beta(p, p), on [1/2, 1]: 2·x^(p−1)(1 − x)^(p−1)/B(p, p)."""
    return 2 * x ** (p - 1) * (1 - x) ** (p - 1) / sp.beta(p, p)


def mixup_linearity_gap(a: sp.Expr, x: sp.Expr, x2: sp.Expr) -> sp.Expr:
    """t(a x + (1 − a) x′) − [a t(x) + (1 − a) t(x′)] for the nonlinear teacher t(u) = u² (B4)."""
    t = lambda u: u**2  # noqa: E731
    return sp.expand(t(a * x + (1 - a) * x2) - (a * t(x) + (1 - a) * t(x2)))


# ---------------------------------------------------------------------------------------------------------
# Proofs: each returns a residual that is exactly 0 iff the identity holds
# ---------------------------------------------------------------------------------------------------------


def prove_funmatch_gradient(C: int) -> sp.Expr:
    """Residual of ∂/∂z_k T²KL(σ_T(v) ‖ σ_T(z)) = T(q_k − p_k) for every k (per sample; the loss divides by N)."""
    z, v, T = symbols(C)
    loss = funmatch_expr(z, v, T)
    p, q = tempered_softmax(v, T), tempered_softmax(z, T)
    return combine_residuals(
        [simplify_residual(sp.diff(loss, zk) - T * (qk - pk), [*z, *v], T) for zk, pk, qk in zip(z, p, q)],
        "dz",
    )


def prove_optimum_is_teacher(C: int) -> sp.Expr:
    """Residual of ∂(T²KL)/∂z = 0 and T²KL = 0 at z = v: the teacher is a stationary point with loss 0 (B3)."""
    z, v, T = symbols(C)
    loss = funmatch_expr(z, v, T)
    at_teacher = dict(zip(z, v))
    parts = [simplify_residual(loss.xreplace(at_teacher), v, T)]
    parts += [simplify_residual(sp.diff(loss, zk).xreplace(at_teacher), v, T) for zk in z]
    return combine_residuals(parts, "opt")


def prove_hessian_is_softmax_covariance(C: int) -> sp.Expr:
    """Residual of ∂²(T²KL)/∂z_j∂z_k = q_j δ_jk − q_j q_k: the loss is convex in z (with the PSD certificate)."""
    z, v, T = symbols(C)
    loss = funmatch_expr(z, v, T)
    q = tempered_softmax(z, T)
    parts = []
    for j in range(C):
        dj = sp.diff(loss, z[j])
        for k in range(j, C):
            expected = q[j] * (1 if j == k else 0) - q[j] * q[k]
            parts.append(simplify_residual(sp.diff(dj, z[k]) - expected, [*z, *v], T))
    return combine_residuals(parts, "hess")


def prove_softmax_covariance_is_psd(C: int) -> sp.Expr:
    """Residual of wᵀ(diag q − q qᵀ)w − Σ_i q_i (w_i − Σ_j q_j w_j)² on the simplex: a sum of squares, so ≥ 0."""
    w = sp.symbols(f"w0:{C}", real=True)
    q = list(sp.symbols(f"q0:{C - 1}", positive=True))
    q.append(1 - sp.Add(*q))
    quad = sp.Add(*[q[i] * w[i] ** 2 for i in range(C)]) - sp.Add(*[q[i] * w[i] for i in range(C)]) ** 2
    mean = sp.Add(*[q[i] * w[i] for i in range(C)])
    sos = sp.Add(*[q[i] * (w[i] - mean) ** 2 for i in range(C)])
    return sp.expand(quad - sos)


def prove_gibbs_certificate(C: int) -> sp.Expr:
    """Residual of Σ_i p_i (q_i/p_i − 1) = 0 for softmaxes: with log x ≤ x − 1 it gives KL(p ‖ q) ≥ 0 (Gibbs)."""
    z, v, T = symbols(C)
    p, q = tempered_softmax(v, T), tempered_softmax(z, T)
    return simplify_residual(sp.Add(*[pi * (qi / pi - 1) for pi, qi in zip(p, q)]), [*z, *v], T)


def prove_mixup_fold_symmetry() -> sp.Expr:
    """Residual of fold(1 − a) − fold(a) = 0 and of fold(a) − 1/2 − |a − 1/2| = 0, so fold(a) ≥ 1/2 (property 19; B5)."""
    a = sp.Symbol("a", real=True)
    symmetry = sp.simplify(fold(1 - a) - fold(a))
    half = sp.simplify((fold(a) - sp.Rational(1, 2) - sp.Abs(a - sp.Rational(1, 2))).rewrite(sp.Piecewise))
    return combine_residuals([symmetry, half], "fold")


def prove_mixup_swap() -> sp.Expr:
    """Residual of mix(x, x′; a) − mix(x′, x; 1 − a): swapping the pair and a ↔ 1 − a gives the same image (B5)."""
    a, x, x2 = sp.symbols("a x x2", real=True)
    mix = lambda first, second, c: c * first + (1 - c) * second  # noqa: E731
    return sp.expand(mix(x, x2, a) - mix(x2, x, 1 - a))


def prove_folded_beta_density(p: sp.Expr) -> sp.Expr:
    """Residual of f(x) − f(1 − x) (Beta(p, p) symmetric) and of ∫_{1/2}^{1} 2f = 1 (the folded density), for p > 0."""
    x = sp.Symbol("x", positive=True)
    f = x ** (p - 1) * (1 - x) ** (p - 1) / sp.beta(p, p)
    symmetry = sp.simplify(f - f.subs(x, 1 - x))
    mass = sp.simplify(sp.integrate(folded_beta_density(x, p), (x, sp.Rational(1, 2), 1)) - 1)
    return combine_residuals([symmetry, sp.nsimplify(mass)], "beta")


def prove_mixup_linearity_gap() -> sp.Expr:
    """Residual of gap − (−a(1 − a)(x − x′)²) for t(u) = u²: the gap is nonzero unless a ∈ {0, 1} or x = x′ (B4)."""
    a, x, x2 = sp.symbols("a x x2", real=True)
    return sp.expand(mixup_linearity_gap(a, x, x2) + a * (1 - a) * (x - x2) ** 2)


# ---------------------------------------------------------------------------------------------------------
# mpmath oracle (50 digits), float64 NumPy in and out
# ---------------------------------------------------------------------------------------------------------


def _sample(z: list[Any], v: list[Any], t: int | None, *, T: Any) -> Any:
    return T * T * mp_kl_from_logs(mp_log_softmax(v, T), mp_log_softmax(z, T))


def funmatch_loss(student_logits: Any, teacher_logits: Any, *, temperature: float = 1.0) -> np.ndarray:
    """Mean over samples of T²·KL(σ_T(t) ‖ σ_T(s)) at 50 digits (Beyer et al. 2022)."""
    return evaluate_loss(partial(_sample, T=mp(temperature)), student_logits, teacher_logits, None, "mean")


def funmatch_loss_grad(
    student_logits: Any, teacher_logits: Any, *, temperature: float = 1.0, grad_output: Any = None
) -> np.ndarray:
    """grad_output·∂funmatch_loss/∂s by 50-digit numerical differentiation (mpmath.diff)."""
    f = partial(_sample, T=mp(temperature))
    return evaluate_grad(f, student_logits, teacher_logits, None, "mean", grad_output)
