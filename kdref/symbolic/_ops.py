"""Shared helpers of the symbolic tier: SymPy building blocks, zero-checking of residuals, mpmath plumbing."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy as sp

#: Working precision (significant decimal digits) of every mpmath oracle.
DPS = 50

# ---------------------------------------------------------------------------------------------------------
# SymPy building blocks
# ---------------------------------------------------------------------------------------------------------


def symbols(C: int) -> tuple[list[sp.Symbol], list[sp.Symbol], sp.Symbol]:
    """Return real student logits z0..z{C-1}, real teacher logits v0..v{C-1} and a positive temperature T."""
    z = [sp.Symbol(f"z{i}", real=True) for i in range(C)]
    v = [sp.Symbol(f"v{i}", real=True) for i in range(C)]
    return z, v, sp.Symbol("T", positive=True)


def tempered_softmax(x: Sequence[sp.Expr], T: sp.Expr) -> list[sp.Expr]:
    """sigma_T(x)_i = exp(x_i/T) / sum_j exp(x_j/T) (Hinton, Vinyals, Dean 2015)."""
    e = [sp.exp(xi / T) for xi in x]
    s = sp.Add(*e)
    return [ei / s for ei in e]


def softmax_excluding(x: Sequence[sp.Expr], t: int, T: sp.Expr) -> list[sp.Expr]:
    """hat p_i = exp(x_i/T) / sum_{j != t} exp(x_j/T) for i != t (Zhao et al. CVPR 2022), in class order."""
    e = [sp.exp(xi / T) for i, xi in enumerate(x) if i != t]
    s = sp.Add(*e)
    return [ei / s for ei in e]


def kl(p: Sequence[sp.Expr], q: Sequence[sp.Expr]) -> sp.Expr:
    """KL(p || q) = sum_i p_i (log p_i - log q_i), reference distribution p first."""
    return sp.Add(*[pi * (sp.log(pi) - sp.log(qi)) for pi, qi in zip(p, q, strict=True)])


def entropy(p: Sequence[sp.Expr]) -> sp.Expr:
    """H(p) = -sum_i p_i log p_i."""
    return -sp.Add(*[pi * sp.log(pi) for pi in p])


def cross_entropy(p: Sequence[sp.Expr], q: Sequence[sp.Expr]) -> sp.Expr:
    """CE(p, q) = -sum_i p_i log q_i."""
    return -sp.Add(*[pi * sp.log(qi) for pi, qi in zip(p, q, strict=True)])


# ---------------------------------------------------------------------------------------------------------
# Zero-checking
# ---------------------------------------------------------------------------------------------------------


def simplify_residual(expr: sp.Expr, logits: Sequence[sp.Symbol], T: sp.Symbol) -> sp.Expr:
    """Canonical rational form of ``expr`` with x = T*log(a) (a > 0) for every logit x and logs made atoms.

    Steps: substitute every logit ``x`` by ``T*log(a_x)`` with a fresh positive symbol ``a_x`` (so that
    ``exp(x/T)`` becomes ``a_x``); bring every ``log`` argument to factored canonical form and split it
    with ``expand_log(force=True)`` (valid: every argument is a product of positive quantities); replace
    each remaining ``log(...)`` atom by a fresh symbol; ``cancel(together(...))``.  The result is 0 iff
    ``expr`` is 0 as a rational function in which the log atoms are independent indeterminates, which
    implies that ``expr`` is identically 0 (a true identity that needs a relation between the log atoms
    could be missed, never the other way round).  The returned non-zero residual is stated in the ``a``
    variables with the log atoms restored.
    """
    sub = {x: T * sp.log(sp.Dummy(f"exp_{x.name}", positive=True)) for x in logits}
    e = sp.sympify(expr).xreplace(sub) if sub else sp.sympify(expr)
    e = e.replace(lambda a: isinstance(a, sp.log), lambda a: sp.log(sp.factor(sp.cancel(a.args[0]))))
    e = sp.expand_log(e, force=True)
    atoms = sorted(e.atoms(sp.log), key=sp.default_sort_key)
    fresh = {a: sp.Dummy(f"L{k}") for k, a in enumerate(atoms)}
    r = sp.cancel(sp.together(e.xreplace(fresh)))
    return r.xreplace({f: a for a, f in fresh.items()})


def is_identically_zero(expr: sp.Expr, logits: Sequence[sp.Symbol], T: sp.Symbol) -> bool:
    """True when :func:`simplify_residual` reduces ``expr`` to exactly 0 (a proof that ``expr`` == 0)."""
    return simplify_residual(expr, logits, T) == 0


def combine_residuals(residuals: Sequence[sp.Expr], name: str = "component") -> sp.Expr:
    """sum_k w_k r_k with fresh independent symbols w_k: 0 iff every (already simplified) r_k is 0."""
    return sp.Add(*[sp.Symbol(f"{name}_{k}") * r for k, r in enumerate(residuals)])


def _series_mul(a: list[sp.Expr], b: list[sp.Expr]) -> list[sp.Expr]:
    return [sp.expand(sp.Add(*[a[j] * b[k - j] for j in range(k + 1)])) for k in range(len(a))]


def _series_reciprocal(a: list[sp.Expr]) -> list[sp.Expr]:
    if a[0].is_zero is not False:
        raise ValueError(f"cannot invert a series whose constant term {a[0]} may vanish (pole at u = 0)")
    b = [1 / a[0]]
    for k in range(1, len(a)):
        b.append(sp.expand(-sp.Add(*[a[j] * b[k - j] for j in range(1, k + 1)]) / a[0]))
    return b


def _series_exp(a: list[sp.Expr]) -> list[sp.Expr]:
    b = [sp.exp(a[0])]  # from b' = a' b
    for k in range(1, len(a)):
        b.append(sp.expand(sp.Add(*[j * a[j] * b[k - j] for j in range(1, k + 1)]) / k))
    return b


def _series_log(a: list[sp.Expr]) -> list[sp.Expr]:
    if a[0].is_positive is not True:
        raise ValueError(f"log of a series whose constant term {a[0]} is not known to be positive")
    out = [sp.log(a[0])]  # from a l' = a'
    for k in range(1, len(a)):
        s = sp.Add(*[j * out[j] * a[k - j] for j in range(1, k)]) / k
        out.append(sp.expand((a[k] - s) / a[0]))
    return out


def taylor_coefficients(expr: sp.Expr, u: sp.Symbol, n: int) -> list[sp.Expr]:
    """Taylor coefficients c_0..c_n of ``expr`` at u = 0 by truncated power-series arithmetic.

    Walks the expression tree bottom-up and propagates the first n + 1 coefficients exactly through
    +, *, integer powers, exp and log (standard recurrences from b' = a' b and a l' = a').  It accepts
    only expressions analytic at 0: inverting a series whose constant term may vanish (e.g. 1/u) or taking
    the log of one whose constant term is not positive raises ``ValueError``; unsupported functions raise
    ``NotImplementedError``.
    """
    memo: dict[sp.Expr, list[sp.Expr]] = {}
    zero = [sp.Integer(0)] * n

    def rec(e: sp.Expr) -> list[sp.Expr]:
        if e in memo:
            return memo[e]
        if not e.has(u):
            r = [e, *zero]
        elif e == u:
            r = [sp.Integer(0), sp.Integer(1), *zero][: n + 1]
        elif isinstance(e, sp.Add):
            parts = [rec(a) for a in e.args]
            r = [sp.expand(sp.Add(*c)) for c in zip(*parts, strict=True)]
        elif isinstance(e, sp.Mul):
            r = [sp.Integer(1), *zero]
            for a in e.args:
                r = _series_mul(r, rec(a))
        elif isinstance(e, sp.Pow):
            base, ex = e.args
            if not ex.is_Integer:
                raise NotImplementedError(f"unsupported power {e}")
            b = rec(base) if ex > 0 else _series_reciprocal(rec(base))
            r = [sp.Integer(1), *zero]
            for _ in range(abs(int(ex))):
                r = _series_mul(r, b)
        elif isinstance(e, sp.exp):
            r = _series_exp(rec(e.args[0]))
        elif isinstance(e, sp.log):
            r = _series_log(rec(e.args[0]))
        else:
            raise NotImplementedError(f"unsupported node {type(e).__name__}: {e}")
        memo[e] = r
        return r

    out = [sp.expand(c) for c in rec(sp.sympify(expr))]
    if any(c.has(sp.zoo, sp.oo, -sp.oo, sp.nan) for c in out):
        raise ValueError("a Taylor coefficient is not finite")
    return out


# ---------------------------------------------------------------------------------------------------------
# mpmath oracle plumbing (every function below computes at the *current* mpmath precision; the public
# oracles enter ``mpmath.workdps(DPS)`` once, so numerical differentiation can raise the precision further)
# ---------------------------------------------------------------------------------------------------------

#: Per-sample loss: (student row, teacher row, target class or None) -> loss value; rows are tuples of mpf.
SampleLoss = Callable[[tuple[Any, ...], tuple[Any, ...], "int | None"], Any]


def mp_cached(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Memoise a pure mpmath helper on (current precision, hashable arguments).

    Numerical differentiation re-evaluates a sample loss with only one student logit changed, so the
    teacher-side quantities (same arguments, same precision) are computed once instead of every time.
    """
    cached = functools.lru_cache(maxsize=1024)(lambda prec, *args: fn(*args))

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        return cached(mpmath.mp.prec, *(tuple(a) if isinstance(a, list) else a for a in args))

    return wrapper


def mp_logsumexp(xs: Sequence[Any]) -> Any:
    """log sum_i exp(x_i) in max-shifted form."""
    m = max(xs)
    return m + mpmath.log(mpmath.fsum(mpmath.exp(x - m) for x in xs))


@mp_cached
def mp_log_softmax(xs: tuple[Any, ...], T: Any) -> tuple[Any, ...]:
    """log sigma_T(x)_i = x_i/T - logsumexp(x/T)."""
    s = [x / T for x in xs]
    lse = mp_logsumexp(s)
    return tuple(si - lse for si in s)


@mp_cached
def mp_exp_all(xs: tuple[Any, ...]) -> tuple[Any, ...]:
    """(exp(x_i))_i, e.g. probabilities from log-probabilities."""
    return tuple(mpmath.exp(x) for x in xs)


def mp_kl_from_logs(log_p: tuple[Any, ...], log_q: Sequence[Any]) -> Any:
    """KL(p || q) = sum_i p_i (log p_i - log q_i) from log-probabilities."""
    return mpmath.fsum(pi * (a - b) for pi, a, b in zip(mp_exp_all(log_p), log_p, log_q, strict=True))


def mp(x: Any) -> Any:
    """Exact mpmath value of a float64 scalar (converted at DPS digits, so no rounding can occur)."""
    with mpmath.workdps(DPS):
        return mpmath.mpf(float(x))


def split_rows(logits: Any) -> tuple[list[tuple[Any, ...]], tuple[int, ...]]:
    """(..., C) float64 array -> (rows as tuples of exact mpf values, leading shape)."""
    a = np.asarray(logits, dtype=np.float64)
    lead = a.shape[:-1]
    return [tuple(mpmath.mpf(float(x)) for x in row) for row in a.reshape(-1, a.shape[-1])], lead


def split_targets(target: Any, n: int) -> list[int] | list[None]:
    """Integer targets of the leading shape -> flat list of Python ints (``None`` -> no targets)."""
    if target is None:
        return [None] * n
    flat = np.asarray(target).reshape(-1)
    return [int(t) for t in flat]


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def evaluate_loss(
    sample: SampleLoss, student_logits: Any, teacher_logits: Any, target: Any, reduction: str
) -> np.ndarray:
    """Apply ``sample`` row by row at DPS digits and reduce ("mean" over samples, "sum", "none")."""
    _check_reduction(reduction)
    with mpmath.workdps(DPS):
        zs, lead = split_rows(student_logits)
        vs, _ = split_rows(teacher_logits)
        ts = split_targets(target, len(zs))
        vals = [sample(z, v, t) for z, v, t in zip(zs, vs, ts, strict=True)]
        if reduction == "none":
            return np.array([float(x) for x in vals], dtype=np.float64).reshape(lead)
        total = mpmath.fsum(vals)
        if reduction == "sum":
            return np.array(float(total), dtype=np.float64)
        return np.array(float(total / len(vals)) if vals else np.nan, dtype=np.float64)


def numerical_gradient(sample: SampleLoss, z: Sequence[Any], v: Sequence[Any], t: int | None) -> list[Any]:
    """d sample(z, v, t) / d z_k for every k by mpmath.diff (central difference at raised precision)."""
    z, v = tuple(z), tuple(v)
    out = []
    for k in range(len(z)):

        def f(x: Any, k: int = k) -> Any:
            return sample((*z[:k], x, *z[k + 1 :]), v, t)

        out.append(mpmath.diff(f, z[k]))
    return out


def evaluate_grad(
    sample: SampleLoss,
    student_logits: Any,
    teacher_logits: Any,
    target: Any,
    reduction: str,
    grad_output: Any,
) -> np.ndarray:
    """Vector-Jacobian product of the reduced loss with ``grad_output`` w.r.t. the student logits."""
    _check_reduction(reduction)
    with mpmath.workdps(DPS):
        zs, lead = split_rows(student_logits)
        vs, _ = split_rows(teacher_logits)
        ts = split_targets(target, len(zs))
        n = len(zs)
        if reduction == "none":
            g = np.ones(lead) if grad_output is None else np.broadcast_to(np.asarray(grad_output), lead)
            weights = [mp(x) for x in np.asarray(g, dtype=np.float64).reshape(-1)]
        else:
            g0 = mpmath.mpf(1) if grad_output is None else mp(np.asarray(grad_output, dtype=np.float64))
            w = g0 / n if reduction == "mean" and n else g0
            weights = [w] * n
        rows = []
        for z, v, t, w in zip(zs, vs, ts, weights, strict=True):
            rows.append([float(w * d) for d in numerical_gradient(sample, z, v, t)])
        shape = np.asarray(student_logits).shape
        return np.array(rows, dtype=np.float64).reshape(shape)
