"""DeiT distillation (Touvron et al., ICML 2021): SymPy expressions, proofs of its identities, mpmath oracle."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ._ops import (
    DPS,
    combine_residuals,
    cross_entropy,
    evaluate_grad,
    evaluate_loss,
    kl,
    mp,
    mp_kl_from_logs,
    mp_log_softmax,
    simplify_residual,
    split_rows,
    split_targets,
    symbols,
    taylor_coefficients,
    tempered_softmax,
)

__all__ = [
    "deit_hard_expr",
    "deit_hard_loss",
    "deit_hard_loss_grad",
    "deit_loss",
    "deit_loss_grad",
    "deit_soft_expr",
    "deit_soft_loss",
    "deit_soft_loss_grad",
    "kl_direction_coefficients",
    "kl_direction_gap",
    "prove_hard_gradient",
    "prove_hard_is_two_hot_cross_entropy",
    "prove_kl_directions_agree_to_second_order",
    "prove_soft_gradient",
    "prove_soft_term_is_kd",
]

ONE = sp.Integer(1)

# ---------------------------------------------------------------------------------------------------------
# SymPy expressions
# ---------------------------------------------------------------------------------------------------------


def _one_hot(C: int, k: int) -> list[sp.Expr]:
    return [sp.Integer(1 if i == k else 0) for i in range(C)]


def _ce(z: Sequence[sp.Expr], y: int) -> sp.Expr:
    return -sp.log(tempered_softmax(z, ONE)[y])


def deit_soft_expr(z: Sequence[sp.Expr], v: Sequence[sp.Expr], y: int, tau: sp.Expr, alpha: sp.Expr) -> sp.Expr:
    """(1 - alpha) CE(psi(z), y) + alpha tau^2 KL(psi(v/tau) || psi(z/tau)) (Touvron et al. 2021, Eq. 2)."""
    return (1 - alpha) * _ce(z, y) + alpha * tau**2 * kl(tempered_softmax(v, tau), tempered_softmax(z, tau))


def deit_hard_expr(z: Sequence[sp.Expr], y: int, y_t: int) -> sp.Expr:
    """1/2 CE(psi(z), y) + 1/2 CE(psi(z), y_t), y_t the teacher's argmax (Touvron et al. 2021, Eq. 3)."""
    return _ce(z, y) / 2 + _ce(z, y_t) / 2


# ---------------------------------------------------------------------------------------------------------
# Proofs: each returns a residual that is exactly 0 iff the identity holds (see _ops.simplify_residual)
# ---------------------------------------------------------------------------------------------------------


def prove_hard_is_two_hot_cross_entropy(C: int, y: int = 0, y_t: int = 1) -> sp.Expr:
    """Residual of Eq. 3 = CE(1/2 e_y + 1/2 e_{y_t}, psi(z)) (T2; plain CE when y_t = y)."""
    z, _, _ = symbols(C)
    target = [a / 2 + b / 2 for a, b in zip(_one_hot(C, y), _one_hot(C, y_t))]
    return simplify_residual(deit_hard_expr(z, y, y_t) - cross_entropy(target, tempered_softmax(z, ONE)), z, ONE)


def prove_hard_gradient(C: int, y: int = 0, y_t: int = 1) -> sp.Expr:
    """Residual of d Eq.3 / d z_k = psi(z)_k - [k = y]/2 - [k = y_t]/2 for every k."""
    z, _, _ = symbols(C)
    q = tempered_softmax(z, ONE)
    loss = deit_hard_expr(z, y, y_t)
    parts = [
        simplify_residual(
            sp.diff(loss, z[k]) - (q[k] - sp.Rational(int(k == y), 2) - sp.Rational(int(k == y_t), 2)), z, ONE
        )
        for k in range(C)
    ]
    return combine_residuals(parts, name="dz")


def prove_soft_gradient(C: int, y: int = 0) -> sp.Expr:
    """Residual of d Eq.2 / d z_k = (1 - alpha)(psi(z)_k - [k = y]) + alpha tau (psi(z/tau)_k - psi(v/tau)_k)."""
    z, v, tau = symbols(C)
    alpha = sp.Symbol("alpha", real=True)
    q1, q, p = tempered_softmax(z, ONE), tempered_softmax(z, tau), tempered_softmax(v, tau)
    loss = deit_soft_expr(z, v, y, tau, alpha)
    parts = [
        simplify_residual(
            sp.diff(loss, z[k]) - ((1 - alpha) * (q1[k] - int(k == y)) + alpha * tau * (q[k] - p[k])), [*z, *v], tau
        )
        for k in range(C)
    ]
    return combine_residuals(parts, name="dz")


def prove_soft_term_is_kd(C: int, y: int = 0) -> sp.Expr:
    """Residual of Eq. 2 at alpha = 1 minus tau^2 KL(psi(v/tau) || psi(z/tau)) (the KD loss at T = tau)."""
    z, v, tau = symbols(C)
    kd = tau**2 * kl(tempered_softmax(v, tau), tempered_softmax(z, tau))
    return simplify_residual(deit_soft_expr(z, v, y, tau, ONE) - kd, [*z, *v], tau)


def kl_direction_gap(z: Sequence[Any], v: Sequence[Any], tau: Any = 1) -> sp.Expr:
    """Exact KL(psi(v/tau) || psi(z/tau)) - KL(psi(z/tau) || psi(v/tau)): computed order minus Eq. 2's printed order."""
    z = [sp.nsimplify(x) for x in z]
    v = [sp.nsimplify(x) for x in v]
    tau = sp.nsimplify(tau)
    p, q = tempered_softmax(v, tau), tempered_softmax(z, tau)
    return kl(p, q) - kl(q, p)


def kl_direction_coefficients(n: int = 4) -> tuple[list[sp.Expr], list[sp.Expr]]:
    """Taylor coefficients in u of KL(t || s) and KL(s || t) along z = (u a, u b, 0), v = 0 (C = 3, tau = 1)."""
    u = sp.Symbol("u", real=True)
    a, b = sp.symbols("a b", real=True)
    z = [u * a, u * b, sp.Integer(0)]
    v = [sp.Integer(0)] * 3
    p, q = tempered_softmax(v, ONE), tempered_softmax(z, ONE)
    forward = [sp.factor(c) for c in taylor_coefficients(kl(p, q), u, n)]
    reverse = [sp.factor(c) for c in taylor_coefficients(kl(q, p), u, n)]
    return forward, reverse


def prove_kl_directions_agree_to_second_order() -> sp.Expr:
    """Residual of [u^0..u^2] KL(t || s) = [u^0..u^2] KL(s || t) near a uniform teacher; they differ at u^3."""
    forward, reverse = kl_direction_coefficients(3)
    return combine_residuals([sp.simplify(f - r) for f, r in zip(forward[:3], reverse[:3])], name="order")


# ---------------------------------------------------------------------------------------------------------
# mpmath oracle (50 significant digits, float64 in / float64 out)
# ---------------------------------------------------------------------------------------------------------

Row = tuple[Any, ...]


def _ce_sample(z: Row, y: int) -> Any:
    return -mp_log_softmax(z, mpmath.mpf(1))[y]


def _argmax_lowest(v: Row) -> int:
    return list(v).index(max(v))


def _soft_kl(z: Row, v: Row, tau: Any) -> Any:
    return mp_kl_from_logs(mp_log_softmax(v, tau), mp_log_softmax(z, tau))


def _soft_sample(z: Row, v: Row, y: int | None, *, alpha: Any, tau: Any, scale: Any) -> Any:
    return (1 - alpha) * _ce_sample(z, y) + alpha * scale * _soft_kl(z, v, tau)  # type: ignore[arg-type]


def _hard_sample(z: Row, v: Row, y: int | None) -> Any:
    return (_ce_sample(z, y) + _ce_sample(z, _argmax_lowest(v))) / 2  # type: ignore[arg-type]


def _soft_partial(student_logits: Any, alpha: float, tau: float, kl_normalization: str):
    C = np.asarray(student_logits).shape[-1]
    with mpmath.workdps(DPS):
        t = mp(tau)
        scale = t * t / (C if kl_normalization == "numel" else 1)
        return partial(_soft_sample, alpha=mp(alpha), tau=t, scale=scale)


def deit_soft_loss(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    alpha: float = 0.1,
    tau: float = 3.0,
    kl_normalization: str = "batch",
) -> np.ndarray:
    """(1 - alpha) CE + alpha tau^2 KL(teacher || student) [/C for "numel"], mean over samples (Eq. 2)."""
    sample = _soft_partial(student_logits, alpha, tau, kl_normalization)
    return evaluate_loss(sample, student_logits, teacher_logits, target, "mean")


def deit_soft_loss_grad(
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    alpha: float = 0.1,
    tau: float = 3.0,
    kl_normalization: str = "batch",
    grad_output: Any = None,
) -> np.ndarray:
    """Gradient of :func:`deit_soft_loss` wrt the student logits by mpmath.diff."""
    sample = _soft_partial(student_logits, alpha, tau, kl_normalization)
    return evaluate_grad(sample, student_logits, teacher_logits, target, "mean", grad_output)


def deit_hard_loss(student_logits: Any, teacher_logits: Any, target: Any) -> np.ndarray:
    """1/2 CE(psi(z), y) + 1/2 CE(psi(z), argmax v) (lowest index on ties), mean over samples (Eq. 3)."""
    return evaluate_loss(_hard_sample, student_logits, teacher_logits, target, "mean")


def deit_hard_loss_grad(
    student_logits: Any, teacher_logits: Any, target: Any, *, grad_output: Any = None
) -> np.ndarray:
    """Gradient of :func:`deit_hard_loss` wrt the student logits by mpmath.diff."""
    return evaluate_grad(_hard_sample, student_logits, teacher_logits, target, "mean", grad_output)


def _two_head_sample(c: Row, d: Row, v: Row, y: int, *, mode: str, alpha: Any, tau: Any, scale: Any) -> Any:
    base = _ce_sample(c, y)
    if mode == "none":
        return base
    extra = _ce_sample(d, _argmax_lowest(v)) if mode == "hard" else scale * _soft_kl(d, v, tau)
    return (1 - alpha) * base + alpha * extra


def _two_head(cls_logits, dist_logits, teacher_logits, target, distillation, alpha, tau, kl_normalization):
    C = np.asarray(cls_logits).shape[-1]
    cs, lead = split_rows(cls_logits)
    ds, _ = split_rows(dist_logits)
    vs, _ = split_rows(teacher_logits)
    ys = split_targets(target, len(cs))
    t = mp(tau)
    f = partial(
        _two_head_sample,
        mode=distillation,
        alpha=mp(alpha),
        tau=t,
        scale=t * t / (C if kl_normalization == "numel" else 1),
    )
    return f, list(zip(cs, ds, vs, ys)), lead


def deit_loss(
    cls_logits: Any,
    dist_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    distillation: str = "hard",
    alpha: float = 0.5,
    tau: float = 1.0,
    kl_normalization: str = "batch",
) -> np.ndarray:
    """(1 - alpha) CE(cls, y) + alpha L_dist(dist, teacher), mean over samples (Touvron et al. 2021, two heads)."""
    with mpmath.workdps(DPS):
        f, rows, _ = _two_head(
            cls_logits, dist_logits, teacher_logits, target, distillation, alpha, tau, kl_normalization
        )
        return np.array(float(mpmath.fsum(f(*r) for r in rows) / len(rows)), dtype=np.float64)


def deit_loss_grad(
    cls_logits: Any,
    dist_logits: Any,
    teacher_logits: Any,
    target: Any,
    *,
    distillation: str = "hard",
    alpha: float = 0.5,
    tau: float = 1.0,
    kl_normalization: str = "batch",
    grad_output: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(d/d cls, d/d dist) of :func:`deit_loss` by mpmath.diff, each of the logits' shape."""
    shape = np.asarray(cls_logits).shape
    with mpmath.workdps(DPS):
        f, rows, _ = _two_head(
            cls_logits, dist_logits, teacher_logits, target, distillation, alpha, tau, kl_normalization
        )
        g = mpmath.mpf(1) if grad_output is None else mp(np.asarray(grad_output, dtype=np.float64))
        w = g / len(rows)
        out: list[list[list[float]]] = [[], []]
        for c, d, v, y in rows:
            for head, row in enumerate((c, d)):
                derivs = []
                for k in range(len(row)):

                    def fk(x: Any, k: int = k, head: int = head, args: tuple = (c, d, v, y)) -> Any:
                        moved = list(args)
                        moved[head] = (*args[head][:k], x, *args[head][k + 1 :])
                        return f(*moved)

                    derivs.append(float(w * mpmath.diff(fk, row[k])))
                out[head].append(derivs)
    return np.array(out[0], dtype=np.float64).reshape(shape), np.array(out[1], dtype=np.float64).reshape(shape)
