"""SimKD (Chen et al., CVPR 2022): SymPy proofs of S1–S4 on small symbolic maps, and an mpmath oracle."""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ._ops import DPS, combine_residuals

__all__ = [
    "adaptive_avg_pool",
    "gap",
    "prove_aligned_features_give_teacher_logits",
    "prove_gap_commutes_with_pooling",
    "prove_gap_jensen_certificate",
    "prove_mse_is_scaled_squared_norm",
    "reused_head_logits",
    "simkd_loss",
    "simkd_loss_grad",
]

Map = list[list[list[sp.Expr]]]  # [channel][row][column]


def feature_map(name: str, C: int, H: int, W: int) -> Map:
    """A (C, H, W) map of real symbols name_c_i_j."""
    return [[[sp.Symbol(f"{name}_{c}_{i}_{j}", real=True) for j in range(W)] for i in range(H)] for c in range(C)]


def gap(f: Map) -> list[sp.Expr]:
    """GAP(f)_c = (1/HW)·Σ_{i,j} f_{c,i,j}."""
    return [sp.Add(*[x for row in ch for x in row]) / (len(ch) * len(ch[0])) for ch in f]


def reused_head_logits(f: Map, W: sp.Matrix, b: sp.Matrix) -> sp.Matrix:
    """ŷ = W·GAP(f) + b: the reused teacher classifier (Chen et al. 2022)."""
    return W * sp.Matrix(gap(f)) + b


def _bins(n: int, k: int) -> list[tuple[int, int]]:
    """Adaptive-average-pooling bins [floor(i·n/k), ceil((i + 1)·n/k)) (PyTorch's definition)."""
    return [((i * n) // k, -((-(i + 1) * n) // k)) for i in range(k)]


def adaptive_avg_pool(f: Map, k: int) -> Map:
    """AdaptiveAvgPool2d to (k, k): each output is the mean of its (possibly overlapping) input bin."""
    H, W = len(f[0]), len(f[0][0])
    out = []
    for ch in f:
        rows = []
        for r0, r1 in _bins(H, k):
            cols = []
            for c0, c1 in _bins(W, k):
                cell = [ch[i][j] for i in range(r0, r1) for j in range(c0, c1)]
                cols.append(sp.Add(*cell) / len(cell))
            rows.append(cols)
        out.append(rows)
    return out


def prove_aligned_features_give_teacher_logits(C: int, K: int, H: int, W: int) -> sp.Expr:
    """S1: residual of ŷ(P(f_s)) − ŷ(f_t) once P(f_s) = f_t, for symbolic W (K×C), b, f_t (C×H×W): exactly 0."""
    Wm = sp.Matrix(K, C, lambda i, j: sp.Symbol(f"W_{i}_{j}", real=True))
    b = sp.Matrix(K, 1, lambda i, _: sp.Symbol(f"b_{i}", real=True))
    f_t, proj = feature_map("ft", C, H, W), feature_map("P", C, H, W)
    aligned = {p: t for pc, tc in zip(proj, f_t) for pr, tr in zip(pc, tc) for p, t in zip(pr, tr)}
    diff = reused_head_logits(proj, Wm, b).xreplace(aligned) - reused_head_logits(f_t, Wm, b)
    return combine_residuals([sp.expand(d) for d in diff], "logit")


def prove_gap_commutes_with_pooling(H: int, k: int, C: int = 1) -> sp.Expr:
    """S2: residual of GAP(AdaptiveAvgPool_k(f)) − GAP(f) for a symbolic (C, H, H) map: 0 when k divides H."""
    f = feature_map("f", C, H, H)
    return combine_residuals([sp.expand(a - b) for a, b in zip(gap(adaptive_avg_pool(f, k)), gap(f))], "gap")


def prove_gap_jensen_certificate(C: int, H: int, W: int) -> sp.Expr:
    """S3: residual of ‖d‖²_F/(HW) − ‖GAP(d)‖² − (1/HW)·Σ_c Σ_s (d_{c,s} − GAP(d)_c)²: 0, so ‖GAP d‖ ≤ ‖d‖_F/√(HW).

    With ‖W·g‖ ≤ ‖W‖_op‖g‖ this gives ‖ŷ_s − ŷ_t‖ ≤ ‖W‖_op·‖P(f_s) − f_t‖_F/√(HW) (the head is affine, so b cancels).
    """
    d = feature_map("d", C, H, W)
    g = gap(d)
    n = H * W
    frob = sp.Add(*[x**2 for ch in d for row in ch for x in row])
    spread = sp.Add(*[(x - g[c]) ** 2 for c, ch in enumerate(d) for row in ch for x in row])
    return sp.expand(frob / n - sp.Add(*[x**2 for x in g]) - spread / n)


def prove_mse_is_scaled_squared_norm(B: int, C: int, H: int, W: int) -> sp.Expr:
    """S4: residual of B·C·H·W·MSE(p, t) − ‖p − t‖²_F: the official mean and the paper's sum differ by a constant."""
    p = [feature_map(f"p{b}", C, H, W) for b in range(B)]
    t = [feature_map(f"t{b}", C, H, W) for b in range(B)]
    sq = [
        (x - y) ** 2 for pb, tb in zip(p, t) for pc, tc in zip(pb, tb) for pr, tr in zip(pc, tc) for x, y in zip(pr, tr)
    ]
    mse = sp.Add(*sq) / len(sq)
    return sp.expand(B * C * H * W * mse - sp.Add(*sq))


# ---------------------------------------------------------------------------------------------------------
# mpmath oracle (50 digits), float64 NumPy in and out
# ---------------------------------------------------------------------------------------------------------


def _flat(x: Any) -> tuple[list[Any], tuple[int, ...]]:
    a = np.asarray(x, dtype=np.float64)
    return [mpmath.mpf(float(v)) for v in a.reshape(-1)], a.shape


def simkd_loss(projected_student_features: Any, teacher_features: Any) -> np.ndarray:
    """mean over all elements of (P(f_s) − f_t)² at 50 digits (Chen et al. 2022, as trained)."""
    with mpmath.workdps(DPS):
        p, _ = _flat(projected_student_features)
        t, _ = _flat(teacher_features)
        return np.array(float(mpmath.fsum((a - b) ** 2 for a, b in zip(p, t, strict=True)) / len(p)))


def simkd_loss_grad(projected_student_features: Any, teacher_features: Any, *, grad_output: Any = None) -> np.ndarray:
    """grad_output·∂simkd_loss/∂P(f_s) by 50-digit numerical differentiation (mpmath.diff), element by element."""
    with mpmath.workdps(DPS):
        p, shape = _flat(projected_student_features)
        t, _ = _flat(teacher_features)
        g0 = mpmath.mpf(1) if grad_output is None else mpmath.mpf(float(np.asarray(grad_output)))
        n = len(p)
        rest = mpmath.fsum((a - b) ** 2 for a, b in zip(p, t, strict=True))
        out = []
        for k in range(n):
            others = rest - (p[k] - t[k]) ** 2

            def f(x: Any, k: int = k, others: Any = others) -> Any:
                return (others + (x - t[k]) ** 2) / n

            out.append(float(g0 * mpmath.diff(f, p[k])))
        return np.array(out, dtype=np.float64).reshape(shape) if math.prod(shape) else np.zeros(shape)
