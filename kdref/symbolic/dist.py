"""DIST (Huang et al., NeurIPS 2022, arXiv:2205.10536): SymPy proofs of the Pearson identities and an mpmath oracle.

Each ``prove_*`` returns a residual that simplifies to exactly 0 when the identity holds.
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import sympy as sp

__all__ = [
    "dist_loss",
    "inter_class_relation",
    "intra_class_relation",
    "pearson",
    "prove_p1_affine_invariance",
    "prove_p2_symmetry",
    "prove_p4_half_squared_distance",
    "prove_p8_gradient_orthogonality",
    "prove_p9_intra_is_inter_of_transposes",
]

DPS = 50


def _vec(name: str, n: int) -> sp.Matrix:
    return sp.Matrix(sp.symbols(f"{name}0:{n}", real=True))


def _centred(u: sp.Matrix) -> sp.Matrix:
    return u - sp.ones(len(u), 1) * (sum(u) / len(u))


def _rho(u: sp.Matrix, v: sp.Matrix) -> sp.Expr:
    a, b = _centred(u), _centred(v)
    return a.dot(b) / (sp.sqrt(a.dot(a)) * sp.sqrt(b.dot(b)))


def prove_p1_affine_invariance(n: int = 3) -> list[sp.Expr]:
    """ρ(m1·u + n1, m2·v + n2) − sign(m1·m2)·ρ(u, v) for m1, m2 > 0, m1 > 0 > m2, m1 < 0 < m2 and m1, m2 < 0 (P1)."""
    u, v = _vec("u", n), _vec("v", n)
    n1, n2 = sp.symbols("n1 n2", real=True)
    p, q = sp.symbols("p q", positive=True)
    out = []
    for m1, m2, sign in ((p, q, 1), (p, -q, -1), (-p, q, -1), (-p, -q, 1)):
        lhs = _rho(m1 * u + n1 * sp.ones(n, 1), m2 * v + n2 * sp.ones(n, 1))
        out.append(sp.simplify(lhs - sign * _rho(u, v)))
    return out


def prove_p2_symmetry(n: int = 4) -> sp.Expr:
    """ρ(u, v) − ρ(v, u) (P2)."""
    u, v = _vec("u", n), _vec("v", n)
    return sp.simplify(_rho(u, v) - _rho(v, u))


def prove_p4_half_squared_distance(n: int = 3) -> sp.Expr:
    """(1 − ρ) − ½‖û − v̂‖² with û = (u − ū)/‖u − ū‖ (P4), hence 0 ≤ 1 − ρ ≤ 2."""
    u, v = _vec("u", n), _vec("v", n)
    a, b = _centred(u), _centred(v)
    na, nb = sp.sqrt(a.dot(a)), sp.sqrt(b.dot(b))
    d = a / na - b / nb
    return sp.simplify((1 - _rho(u, v)) - d.dot(d) / 2)


def prove_p8_gradient_orthogonality(n: int = 3) -> tuple[sp.Expr, sp.Expr]:
    """(⟨∇_u ρ, 1⟩, ⟨∇_u ρ, u − ū⟩): the gradient is orthogonal to shifts and to scaling (P8)."""
    u, v = _vec("u", n), _vec("v", n)
    r = _rho(u, v)
    grad = sp.Matrix([sp.diff(r, x) for x in u])
    return sp.simplify(sum(grad)), sp.simplify(grad.dot(_centred(u)))


def prove_p9_intra_is_inter_of_transposes(rows: int = 2, cols: int = 3) -> sp.Expr:
    """intra(Y_s, Y_t) − inter(Y_sᵀ, Y_tᵀ) on symbolic matrices, both written from ρ (P9, by construction)."""
    S = sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"s{i}{j}", real=True))
    T = sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"t{i}{j}", real=True))

    def inter(A: sp.Matrix, B: sp.Matrix) -> sp.Expr:
        return 1 - sum(_rho(A[i, :].T, B[i, :].T) for i in range(A.rows)) / A.rows

    def intra(A: sp.Matrix, B: sp.Matrix) -> sp.Expr:
        return 1 - sum(_rho(A[:, j], B[:, j]) for j in range(A.cols)) / A.cols

    return sp.simplify(intra(S, T) - inter(S.T, T.T))


# ----------------------------------------------------------------------------------------------------------------
# mpmath oracle ("exact" mode, 50 digits): float64 NumPy in, float64 NumPy out.


def _mp_rho(a: list, b: list) -> Any:
    n = len(a)
    ma, mb = mpmath.fsum(a) / n, mpmath.fsum(b) / n
    ac, bc = [x - ma for x in a], [x - mb for x in b]
    na, nb = mpmath.sqrt(mpmath.fsum(x * x for x in ac)), mpmath.sqrt(mpmath.fsum(x * x for x in bc))
    if na == 0 or nb == 0:
        return mpmath.mpf(0)
    return mpmath.fsum(x * y for x, y in zip(ac, bc)) / (na * nb)


def _mp_softmax(row: list, tau: Any) -> list:
    z = [x / tau for x in row]
    m = max(z)
    e = [mpmath.exp(x - m) for x in z]
    s = mpmath.fsum(e)
    return [x / s for x in e]


def _mp_matrix(x: Any) -> list:
    return [[mpmath.mpf(float(v)) for v in row] for row in np.asarray(x, dtype=np.float64)]


def pearson(x: Any, y: Any, *, dim: int = -1) -> np.ndarray:
    """ρ along ``dim`` to 50 digits, rounded to float64 (0 for a constant vector)."""
    with mpmath.workdps(DPS):
        a = np.moveaxis(np.asarray(x, dtype=np.float64), dim, -1)
        b = np.moveaxis(np.asarray(y, dtype=np.float64), dim, -1)
        out = np.empty(a.shape[:-1])
        for idx in np.ndindex(out.shape):
            out[idx] = float(_mp_rho([mpmath.mpf(float(v)) for v in a[idx]], [mpmath.mpf(float(v)) for v in b[idx]]))
        return out


def _relations(s: Any, t: Any, tau: float) -> tuple[Any, Any]:
    S = [_mp_softmax(r, mpmath.mpf(tau)) for r in _mp_matrix(s)]
    T = [_mp_softmax(r, mpmath.mpf(tau)) for r in _mp_matrix(t)]
    inter = 1 - mpmath.fsum(_mp_rho(a, b) for a, b in zip(S, T)) / len(S)
    cols = len(S[0])
    intra = 1 - mpmath.fsum(_mp_rho([r[j] for r in S], [r[j] for r in T]) for j in range(cols)) / cols
    return inter, intra


def inter_class_relation(student_logits: Any, teacher_logits: Any, *, tau: float = 1.0) -> np.ndarray:
    """1 − mean_i ρ(σ(s_i/τ), σ(t_i/τ)) to 50 digits."""
    with mpmath.workdps(DPS):
        return np.asarray(float(_relations(student_logits, teacher_logits, tau)[0]))


def intra_class_relation(student_logits: Any, teacher_logits: Any, *, tau: float = 1.0) -> np.ndarray:
    """1 − mean_j ρ(Y_s[:, j], Y_t[:, j]) to 50 digits."""
    with mpmath.workdps(DPS):
        return np.asarray(float(_relations(student_logits, teacher_logits, tau)[1]))


def dist_loss(
    student_logits: Any, teacher_logits: Any, *, beta: float = 2.0, gamma: float = 2.0, tau: float = 1.0
) -> np.ndarray:
    """τ²·(β·inter + γ·intra) to 50 digits."""
    with mpmath.workdps(DPS):
        inter, intra = _relations(student_logits, teacher_logits, tau)
        return np.asarray(float(mpmath.mpf(tau) ** 2 * (beta * inter + gamma * intra)))


def dist_loss_grad(
    student_logits: Any, teacher_logits: Any, *, beta: float = 2.0, gamma: float = 2.0, tau: float = 1.0
) -> np.ndarray:
    """∂dist_loss/∂s by 50-digit numerical differentiation (mpmath.diff), entry by entry."""
    s = np.asarray(student_logits, dtype=np.float64)
    out = np.empty_like(s)
    with mpmath.workdps(DPS):
        base = _mp_matrix(s)
        for i, j in np.ndindex(s.shape):

            def f(h, i=i, j=j):
                m = [row[:] for row in base]
                m[i][j] = m[i][j] + h
                S = [_mp_softmax(r, mpmath.mpf(tau)) for r in m]
                T = [_mp_softmax(r, mpmath.mpf(tau)) for r in _mp_matrix(teacher_logits)]
                inter = 1 - mpmath.fsum(_mp_rho(a, b) for a, b in zip(S, T)) / len(S)
                C = len(S[0])
                intra = 1 - mpmath.fsum(_mp_rho([r[k] for r in S], [r[k] for r in T]) for k in range(C)) / C
                return mpmath.mpf(tau) ** 2 * (beta * inter + gamma * intra)

            out[i, j] = float(mpmath.diff(f, 0))
    return out
