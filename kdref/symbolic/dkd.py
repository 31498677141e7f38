"""Decoupled KD (Zhao et al. CVPR 2022): SymPy expressions, proofs of its identities, mpmath oracle."""

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
    kl,
    mp,
    mp_cached,
    mp_kl_from_logs,
    mp_logsumexp,
    simplify_residual,
    softmax_excluding,
    symbols,
    tempered_softmax,
)

__all__ = [
    "binary_target",
    "dkd_expr",
    "dkd_loss",
    "dkd_loss_grad",
    "nckd",
    "nckd_expr",
    "nckd_grad",
    "nckd_gradient_expected",
    "prove_decomposition",
    "prove_dkd_gradient",
    "prove_nckd_binary_zero",
    "prove_nckd_gradient",
    "prove_nckd_independent_of_target_logits",
    "prove_tckd_gradient",
    "tckd",
    "tckd_expr",
    "tckd_grad",
    "tckd_gradient_expected",
]

# ---------------------------------------------------------------------------------------------------------
# SymPy expressions
# ---------------------------------------------------------------------------------------------------------


def binary_target(x: Sequence[sp.Expr], t: int, T: sp.Expr) -> list[sp.Expr]:
    """b = [p_t, 1 - p_t] with p = sigma_T(x) (Zhao et al. CVPR 2022)."""
    pt = tempered_softmax(x, T)[t]
    return [pt, 1 - pt]


def tckd_expr(z: Sequence[sp.Expr], v: Sequence[sp.Expr], t: int, T: sp.Expr) -> sp.Expr:
    """TCKD = KL(b^teacher || b^student), b = [p_t, 1 - p_t], no T^2 (Zhao et al. CVPR 2022)."""
    return kl(binary_target(v, t, T), binary_target(z, t, T))


def nckd_expr(z: Sequence[sp.Expr], v: Sequence[sp.Expr], t: int, T: sp.Expr) -> sp.Expr:
    """NCKD = KL(hat p^teacher || hat p^student) over the classes i != t, no T^2 (Zhao et al. CVPR 2022)."""
    return kl(softmax_excluding(v, t, T), softmax_excluding(z, t, T))


def dkd_expr(
    z: Sequence[sp.Expr],
    v: Sequence[sp.Expr],
    t: int,
    T: sp.Expr,
    alpha: sp.Expr,
    beta: sp.Expr,
) -> sp.Expr:
    """DKD = T^2 * (alpha * TCKD + beta * NCKD) (Zhao et al. CVPR 2022)."""
    return T**2 * (alpha * tckd_expr(z, v, t, T) + beta * nckd_expr(z, v, t, T))


# ---------------------------------------------------------------------------------------------------------
# Proofs: each returns a residual that is exactly 0 iff the identity holds (see _ops.simplify_residual)
# ---------------------------------------------------------------------------------------------------------


def prove_decomposition(C: int, t: int = 0) -> sp.Expr:
    """Residual of KL(p^T || p^S) = TCKD + (1 - p_t^T) * NCKD, any T and t (Zhao et al. CVPR 2022, Eq. 4)."""
    z, v, T = symbols(C)
    p = tempered_softmax(v, T)
    residual = kl(p, tempered_softmax(z, T)) - tckd_expr(z, v, t, T) - (1 - p[t]) * nckd_expr(z, v, t, T)
    return simplify_residual(residual, [*z, *v], T)


def prove_nckd_binary_zero(t: int = 0) -> sp.Expr:
    """Residual of NCKD = 0 for C = 2 (a single non-target class carries no distribution)."""
    z, v, T = symbols(2)
    return simplify_residual(nckd_expr(z, v, t, T), [*z, *v], T)


#: (expected d/dz_k for every k, student symbols z, teacher symbols v, temperature T)
GradientSpec = tuple[list[sp.Expr], list[sp.Symbol], list[sp.Symbol], sp.Symbol]


def _non_target_probs(z: Sequence[sp.Symbol], t: int, T: sp.Symbol) -> dict[int, sp.Expr]:
    return dict(zip([i for i in range(len(z)) if i != t], softmax_excluding(z, t, T)))


def tckd_gradient_expected(C: int, t: int) -> GradientSpec:
    """Closed-form d TCKD / d z: (q_t - p_t)/T at t, -(q_t - p_t) hat q_i / T elsewhere (and the symbols)."""
    z, v, T = symbols(C)
    d = tempered_softmax(z, T)[t] - tempered_softmax(v, T)[t]
    qh = _non_target_probs(z, t, T)
    return [d / T if k == t else -d * qh[k] / T for k in range(C)], z, v, T


def nckd_gradient_expected(C: int, t: int) -> GradientSpec:
    """Closed-form d NCKD / d z: (hat q_i - hat p_i)/T for i != t, 0 at t (and the symbols)."""
    z, v, T = symbols(C)
    qh, ph = _non_target_probs(z, t, T), _non_target_probs(v, t, T)
    return [sp.Integer(0) if k == t else (qh[k] - ph[k]) / T for k in range(C)], z, v, T


def _grad_residual(
    loss: sp.Expr, expected: Sequence[sp.Expr], z: Sequence[sp.Symbol], v: Sequence[sp.Symbol], T: sp.Symbol
) -> sp.Expr:
    logits = [*z, *v]
    return combine_residuals(
        [simplify_residual(sp.diff(loss, zk) - e, logits, T) for zk, e in zip(z, expected, strict=True)],
        name="dz",
    )


def prove_tckd_gradient(C: int, t: int = 0) -> sp.Expr:
    """Residual of d TCKD/d z_t = (q_t - p_t)/T, d TCKD/d z_i = -(q_t - p_t) hat q_i/T (i != t)."""
    expected, z, v, T = tckd_gradient_expected(C, t)
    return _grad_residual(tckd_expr(z, v, t, T), expected, z, v, T)


def prove_nckd_gradient(C: int, t: int = 0) -> sp.Expr:
    """Residual of d NCKD/d z_i = (hat q_i - hat p_i)/T (i != t) and d NCKD/d z_t = 0."""
    expected, z, v, T = nckd_gradient_expected(C, t)
    return _grad_residual(nckd_expr(z, v, t, T), expected, z, v, T)


def prove_dkd_gradient(C: int, t: int = 0) -> sp.Expr:
    """Residual of d DKD/d z = T^2 (alpha d TCKD/d z + beta d NCKD/d z) with the closed forms above."""
    gt, z, v, T = tckd_gradient_expected(C, t)
    gn, _, _, _ = nckd_gradient_expected(C, t)
    alpha, beta = sp.symbols("alpha beta", real=True)
    expected = [T**2 * (alpha * a + beta * b) for a, b in zip(gt, gn)]
    return _grad_residual(dkd_expr(z, v, t, T, alpha, beta), expected, z, v, T)


def prove_nckd_independent_of_target_logits(C: int, t: int = 0) -> sp.Expr:
    """Residual of d NCKD / d z_t = 0 and d NCKD / d v_t = 0."""
    z, v, T = symbols(C)
    n = nckd_expr(z, v, t, T)
    derivatives = [sp.diff(n, x) for x in (z[t], v[t])]
    return combine_residuals([simplify_residual(d, [*z, *v], T) for d in derivatives], name="d_target")


# ---------------------------------------------------------------------------------------------------------
# mpmath oracle (50 significant digits, float64 in / float64 out)
# ---------------------------------------------------------------------------------------------------------


Row = tuple[Any, ...]


@mp_cached
def _log_binary(x: Row, t: int, T: Any) -> tuple[Any, Any]:
    """[log p_t, log(1 - p_t)], with log(1 - p_t) = lse_{j != t}(x/T) - lse(x/T) (no cancellation)."""
    s = [xi / T for xi in x]
    lse = mp_logsumexp(s)
    return (s[t] - lse, mp_logsumexp([si for i, si in enumerate(s) if i != t]) - lse)


@mp_cached
def _log_non_target(x: Row, t: int, T: Any) -> tuple[Any, ...]:
    """log hat p_i = x_i/T - lse_{j != t}(x_j/T) for i != t."""
    s = [xi / T for i, xi in enumerate(x) if i != t]
    lse = mp_logsumexp(s)
    return tuple(si - lse for si in s)


def _tckd_sample(z: Row, v: Row, t: int, *, T: Any) -> Any:
    return mp_kl_from_logs(_log_binary(v, t, T), _log_binary(z, t, T))


def _nckd_sample(z: Row, v: Row, t: int, *, T: Any) -> Any:
    return mp_kl_from_logs(_log_non_target(v, t, T), _log_non_target(z, t, T))


def _dkd_sample(z: Row, v: Row, t: int, *, T: Any, alpha: Any, beta: Any) -> Any:
    return T**2 * (alpha * _tckd_sample(z, v, t, T=T) + beta * _nckd_sample(z, v, t, T=T))


def tckd(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    temperature: float = 4.0,
    reduction: str = "mean",
) -> np.ndarray:
    """TCKD = KL([p_t, 1 - p_t]^teacher || [q_t, 1 - q_t]^student) per sample, no T^2 (Zhao et al. 2022)."""
    f = partial(_tckd_sample, T=mp(temperature))
    return evaluate_loss(f, student_logits, teacher_logits, target, reduction)


def nckd(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    temperature: float = 4.0,
    reduction: str = "mean",
) -> np.ndarray:
    """NCKD = KL(hat p^teacher || hat p^student) over non-target classes, no T^2 (Zhao et al. 2022)."""
    f = partial(_nckd_sample, T=mp(temperature))
    return evaluate_loss(f, student_logits, teacher_logits, target, reduction)


def dkd_loss(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
    reduction: str = "mean",
) -> np.ndarray:
    """DKD = T^2 * (alpha * TCKD + beta * NCKD) per sample (Zhao et al. CVPR 2022)."""
    f = partial(_dkd_sample, T=mp(temperature), alpha=mp(alpha), beta=mp(beta))
    return evaluate_loss(f, student_logits, teacher_logits, target, reduction)


def tckd_grad(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    temperature: float = 4.0,
    reduction: str = "mean",
    grad_output: Any = None,
) -> np.ndarray:
    """grad_output-weighted d tckd / d student_logits, 50-digit numerical diff (Zhao et al. CVPR 2022)."""
    f = partial(_tckd_sample, T=mp(temperature))
    return evaluate_grad(f, student_logits, teacher_logits, target, reduction, grad_output)


def nckd_grad(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    temperature: float = 4.0,
    reduction: str = "mean",
    grad_output: Any = None,
) -> np.ndarray:
    """grad_output-weighted d nckd / d student_logits, 50-digit numerical diff (Zhao et al. CVPR 2022)."""
    f = partial(_nckd_sample, T=mp(temperature))
    return evaluate_grad(f, student_logits, teacher_logits, target, reduction, grad_output)


def dkd_loss_grad(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
    reduction: str = "mean",
    grad_output: Any = None,
) -> np.ndarray:
    """grad_output-weighted d dkd_loss / d student_logits, 50-digit numerical diff (Zhao et al. CVPR 2022)."""
    f = partial(_dkd_sample, T=mp(temperature), alpha=mp(alpha), beta=mp(beta))
    return evaluate_grad(f, student_logits, teacher_logits, target, reduction, grad_output)
