"""Hinton KD (Hinton, Vinyals, Dean 2015): SymPy expressions, proofs of its identities, mpmath oracle."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ._ops import (
    combine_residuals,
    cross_entropy,
    entropy,
    evaluate_grad,
    evaluate_loss,
    kl,
    mp,
    mp_exp_all,
    mp_kl_from_logs,
    mp_log_softmax,
    simplify_residual,
    symbols,
    taylor_coefficients,
    tempered_softmax,
)

__all__ = [
    "high_temperature_gradient_coefficients",
    "high_temperature_kl_coefficients",
    "high_temperature_next_term",
    "hinton_expr",
    "hinton_loss",
    "hinton_loss_grad",
    "kd_expr",
    "kd_loss",
    "kd_loss_grad",
    "prove_high_temperature_kl_limit",
    "prove_high_temperature_limit",
    "prove_hinton_gradient",
    "prove_kd_gradient",
    "prove_soft_ce_gradient",
    "prove_soft_ce_is_kl_plus_entropy",
    "soft_cross_entropy",
    "soft_cross_entropy_expr",
    "soft_cross_entropy_grad",
]

# ---------------------------------------------------------------------------------------------------------
# SymPy expressions
# ---------------------------------------------------------------------------------------------------------


def kd_expr(z: Sequence[sp.Expr], v: Sequence[sp.Expr], T: sp.Expr) -> sp.Expr:
    """T^2 * KL(sigma_T(v) || sigma_T(z)) (Hinton, Vinyals, Dean 2015)."""
    return T**2 * kl(tempered_softmax(v, T), tempered_softmax(z, T))


def soft_cross_entropy_expr(z: Sequence[sp.Expr], v: Sequence[sp.Expr], T: sp.Expr) -> sp.Expr:
    """-sum_i sigma_T(v)_i log sigma_T(z)_i, no T^2 (Hinton, Vinyals, Dean 2015)."""
    return cross_entropy(tempered_softmax(v, T), tempered_softmax(z, T))


def hinton_expr(z: Sequence[sp.Expr], v: Sequence[sp.Expr], y: int, T: sp.Expr, lam: sp.Expr) -> sp.Expr:
    """lam * CE(sigma_1(z), y) + (1 - lam) * T^2 * softCE_T(z, v) (Hinton, Vinyals, Dean 2015)."""
    hard = -sp.log(tempered_softmax(z, sp.Integer(1))[y])
    return lam * hard + (1 - lam) * T**2 * soft_cross_entropy_expr(z, v, T)


# ---------------------------------------------------------------------------------------------------------
# Proofs: each returns a residual that is exactly 0 iff the identity holds (see _ops.simplify_residual)
# ---------------------------------------------------------------------------------------------------------


def _grad_residuals(
    loss: sp.Expr, expected: Sequence[sp.Expr], z: Sequence[sp.Symbol], v: Sequence[sp.Symbol], T: sp.Symbol
) -> sp.Expr:
    logits = [*z, *v]
    return combine_residuals(
        [simplify_residual(sp.diff(loss, zk) - e, logits, T) for zk, e in zip(z, expected, strict=True)],
        name="dz",
    )


def prove_soft_ce_gradient(C: int) -> sp.Expr:
    """Residual of d softCE / d z_k = (q_k - p_k) / T for every k (Hinton, Vinyals, Dean 2015)."""
    z, v, T = symbols(C)
    p, q = tempered_softmax(v, T), tempered_softmax(z, T)
    return _grad_residuals(soft_cross_entropy_expr(z, v, T), [(qk - pk) / T for pk, qk in zip(p, q)], z, v, T)


def prove_kd_gradient(C: int) -> sp.Expr:
    """Residual of d(T^2 KL(p || q)) / d z_k = T (q_k - p_k) for every k (Hinton, Vinyals, Dean 2015)."""
    z, v, T = symbols(C)
    p, q = tempered_softmax(v, T), tempered_softmax(z, T)
    return _grad_residuals(kd_expr(z, v, T), [T * (qk - pk) for pk, qk in zip(p, q)], z, v, T)


def prove_hinton_gradient(C: int, y: int = 0) -> sp.Expr:
    """Residual of d hinton / d z_k = lam (sigma_1(z)_k - [k = y]) + (1 - lam) T (q_k - p_k) for every k."""
    z, v, T = symbols(C)
    lam = sp.Symbol("lam", real=True)
    p, q, s1 = tempered_softmax(v, T), tempered_softmax(z, T), tempered_softmax(z, sp.Integer(1))
    expected = [lam * (s1[k] - (1 if k == y else 0)) + (1 - lam) * T * (q[k] - p[k]) for k in range(C)]
    return _grad_residuals(hinton_expr(z, v, y, T, lam), expected, z, v, T)


def prove_soft_ce_is_kl_plus_entropy(C: int) -> sp.Expr:
    """Residual of softCE(z, v) = KL(p || q) + H(p), p = sigma_T(v), q = sigma_T(z)."""
    z, v, T = symbols(C)
    p, q = tempered_softmax(v, T), tempered_softmax(z, T)
    return simplify_residual(soft_cross_entropy_expr(z, v, T) - kl(p, q) - entropy(p), [*z, *v], T)


def _centered(x: Sequence[sp.Expr]) -> list[sp.Expr]:
    m = sp.Add(*x) / len(x)
    return [xi - m for xi in x]


def high_temperature_gradient_coefficients(C: int, i: int, n: int) -> list[sp.Expr]:
    """Coefficients [c_-2, ..., c_{n-2}] of T^2 d softCE/d z_i = sum_k c_k T^-k as T -> oo.

    With u = 1/T, d softCE/d z_i is analytic at u = 0 and T^2 = u^-2 is the only pole, so c_k is the
    (k + 2)-th Taylor coefficient of d softCE/d z_i in u.
    """
    z, v, T = symbols(C)
    u = sp.Symbol("u", positive=True)
    return taylor_coefficients(sp.diff(soft_cross_entropy_expr(z, v, T), z[i]).subs(T, 1 / u), u, n)


def high_temperature_kl_coefficients(C: int, n: int) -> list[sp.Expr]:
    """Coefficients [c_-2, ..., c_{n-2}] of T^2 KL(sigma_T(v) || sigma_T(z)) = sum_k c_k T^-k as T -> oo."""
    z, v, T = symbols(C)
    u = sp.Symbol("u", positive=True)
    return taylor_coefficients(kl(tempered_softmax(v, T), tempered_softmax(z, T)).subs(T, 1 / u), u, n)


def prove_high_temperature_limit(C: int, i: int | None = None) -> sp.Expr:
    """Residual of lim_{T->oo} T^2 d softCE/d z_i = ((z_i - mean z) - (v_i - mean v))/C (Hinton et al. 2015).

    The coefficients of T^2 and T must vanish and the T^0 coefficient must equal the centred logit
    difference over C (no zero-mean assumption); ``i=None`` checks every class.
    """
    z, v, _ = symbols(C)
    zc, vc = _centered(z), _centered(v)
    parts = []
    for k in range(C) if i is None else [i]:
        c = high_temperature_gradient_coefficients(C, k, 2)
        parts += [c[0], c[1], sp.expand(c[2] - (zc[k] - vc[k]) / C)]
    return combine_residuals(parts, name="coeff")


def high_temperature_next_term(C: int) -> list[sp.Expr]:
    """Coefficient of 1/T in the expansion of T^2 d softCE/d z_i as T -> oo, for every class i.

    Closed form: ((z_i - mean z)^2 - var z - (v_i - mean v)^2 + var v) / (2C), a finite polynomial, so the
    error of the limit is O(1/T).
    """
    return [high_temperature_gradient_coefficients(C, k, 3)[3] for k in range(C)]


def prove_high_temperature_kl_limit(C: int) -> sp.Expr:
    """Residual of lim_{T->oo} T^2 KL(sigma_T(v) || sigma_T(z)) = ||(z - mean z) - (v - mean v)||^2 / (2C)."""
    z, v, _ = symbols(C)
    c = high_temperature_kl_coefficients(C, 2)
    zc, vc = _centered(z), _centered(v)
    target = sp.Add(*[(a - b) ** 2 for a, b in zip(zc, vc)]) / (2 * C)
    return combine_residuals([c[0], c[1], sp.expand(c[2] - target)], name="coeff")


# ---------------------------------------------------------------------------------------------------------
# mpmath oracle (50 significant digits, float64 in / float64 out)
# ---------------------------------------------------------------------------------------------------------


Row = tuple[Any, ...]


def _kd_sample(z: Row, v: Row, t: int | None, *, T: Any) -> Any:
    return T**2 * mp_kl_from_logs(mp_log_softmax(v, T), mp_log_softmax(z, T))


def _soft_ce_sample(z: Row, v: Row, t: int | None, *, T: Any) -> Any:
    p = mp_exp_all(mp_log_softmax(v, T))
    return -mpmath.fsum(a * b for a, b in zip(p, mp_log_softmax(z, T), strict=True))


def _hinton_sample(z: Row, v: Row, t: int | None, *, T: Any, lam: Any) -> Any:
    hard = -mp_log_softmax(z, mpmath.mpf(1))[t]
    return lam * hard + (1 - lam) * T**2 * _soft_ce_sample(z, v, t, T=T)


def kd_loss(
    student_logits: Any, teacher_logits: Any, *, temperature: float = 4.0, reduction: str = "mean"
) -> np.ndarray:
    """T^2 * KL(sigma_T(teacher) || sigma_T(student)) per sample, reduced (Hinton, Vinyals, Dean 2015)."""
    f = partial(_kd_sample, T=mp(temperature))
    return evaluate_loss(f, student_logits, teacher_logits, None, reduction)


def soft_cross_entropy(
    student_logits: Any, teacher_logits: Any, *, temperature: float = 4.0, reduction: str = "mean"
) -> np.ndarray:
    """-sum_i sigma_T(teacher)_i log sigma_T(student)_i per sample, no T^2 (Hinton, Vinyals, Dean 2015)."""
    f = partial(_soft_ce_sample, T=mp(temperature))
    return evaluate_loss(f, student_logits, teacher_logits, None, reduction)


def hinton_loss(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    temperature: float = 4.0,
    lam: float = 0.1,
    reduction: str = "mean",
) -> np.ndarray:
    """lam * CE(sigma_1(student), y) + (1 - lam) * T^2 * softCE per sample (Hinton, Vinyals, Dean 2015)."""
    f = partial(_hinton_sample, T=mp(temperature), lam=mp(lam))
    return evaluate_loss(f, student_logits, teacher_logits, target, reduction)


def kd_loss_grad(
    student_logits: Any,
    teacher_logits: Any,
    *,
    temperature: float = 4.0,
    reduction: str = "mean",
    grad_output: Any = None,
) -> np.ndarray:
    """grad_output-weighted d kd_loss / d student_logits, 50-digit numerical diff (Hinton 2015)."""
    f = partial(_kd_sample, T=mp(temperature))
    return evaluate_grad(f, student_logits, teacher_logits, None, reduction, grad_output)


def soft_cross_entropy_grad(
    student_logits: Any,
    teacher_logits: Any,
    *,
    temperature: float = 4.0,
    reduction: str = "mean",
    grad_output: Any = None,
) -> np.ndarray:
    """grad_output-weighted d soft_cross_entropy / d student_logits, 50-digit numerical diff (Hinton 2015)."""
    f = partial(_soft_ce_sample, T=mp(temperature))
    return evaluate_grad(f, student_logits, teacher_logits, None, reduction, grad_output)


def hinton_loss_grad(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    temperature: float = 4.0,
    lam: float = 0.1,
    reduction: str = "mean",
    grad_output: Any = None,
) -> np.ndarray:
    """grad_output-weighted d hinton_loss / d student_logits, 50-digit numerical diff (Hinton 2015)."""
    f = partial(_hinton_sample, T=mp(temperature), lam=mp(lam))
    return evaluate_grad(f, student_logits, teacher_logits, target, reduction, grad_output)
