"""Name the usual reason an implementation disagrees with kdref.reference.

Each candidate is a known way implementations differ (a missing T², averaging over N·C, the KL reversed, soft CE
in place of KL, DKD without the per-sample (1 − p_t) weight, DIST's ε variants…), written as the value that
deviation produces. When an agreement check fails, every candidate is evaluated on the failing input and on a
fixed set of probe inputs; a candidate that explains them all is reported, e.g. "kd_loss = kdref.kd_loss / C for
every input tried: this is averaging over N·C".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import reference as R
from ._contract import CONTRACT

Args = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Candidate:
    """A known deviation: what it is called, what it means, and the value it gives."""

    label: str
    meaning: str
    value: Callable[[Args, dict[str, Any]], np.ndarray]


def _softmax(x: np.ndarray, T: float) -> np.ndarray:
    z = x / T - np.max(x / T, -1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _reduce(rows: np.ndarray, reduction: str) -> np.ndarray:
    return np.asarray(rows.mean() if reduction == "mean" else rows.sum() if reduction == "sum" else rows)


def _T(kw: dict[str, Any], key: str = "temperature", default: float = 4.0) -> float:
    return float(kw.get(key, default))


def _C(args: Args) -> int:
    return int(args[0].shape[-1])


def _scaled(fn: str, label: str, meaning: str, factor: Callable[[Args, dict[str, Any]], float]) -> Candidate:
    return Candidate(label, meaning, lambda a, kw: np.asarray(getattr(R, fn)(*a, **kw)) * factor(a, kw))


def _samples(args: Args) -> int:
    return int(np.prod(args[0].shape[:-1]))


def _mean_reduction(kw: dict[str, Any]) -> bool:
    return kw.get("reduction", "mean") == "mean"


def _kl_reversed(a: Args, kw: dict[str, Any]) -> np.ndarray:
    T = _T(kw)
    return np.asarray(R.kd_loss(a[1], a[0], temperature=T, reduction=kw.get("reduction", "mean")))


def _common_scales(fn: str, t_key: str | None, t_power: int) -> list[Candidate]:
    out = [
        _scaled(
            fn,
            f"{fn} / C",
            "this is averaging over N·C elements (F.kl_div's 'mean', DeiT's official "
            "normalisation) instead of over the N samples",
            lambda a, kw: 1.0 / _C(a),
        ),
        _scaled(
            fn,
            f"{fn} × N",
            "this is a sum over samples where a mean is expected",
            lambda a, kw: float(_samples(a)) if _mean_reduction(kw) else np.nan,
        ),
    ]
    if t_key is not None:
        sym = "T" if t_key == "temperature" else "τ"
        if t_power:
            out.append(
                _scaled(fn, f"{fn} / {sym}²", f"the {sym}² factor is missing", lambda a, kw: 1.0 / _T(kw, t_key) ** 2)
            )
        out.append(
            _scaled(
                fn,
                f"{fn} × {sym}²",
                f"an extra {sym}² factor is applied" + ("" if t_power else f" ({fn} has no {sym}² in the contract)"),
                lambda a, kw: _T(kw, t_key) ** 2,
            )
        )
    return out


def _soft_ce_for_kd(a: Args, kw: dict[str, Any]) -> np.ndarray:
    T = _T(kw)
    return T * T * np.asarray(R.soft_cross_entropy(a[0], a[1], temperature=T, reduction=kw.get("reduction", "mean")))


def _kl_for_soft_ce(a: Args, kw: dict[str, Any]) -> np.ndarray:
    T = _T(kw)
    return np.asarray(R.kd_loss(a[0], a[1], temperature=T, reduction=kw.get("reduction", "mean"))) / (T * T)


def _hinton_lambda_swapped(a: Args, kw: dict[str, Any]) -> np.ndarray:
    s, t, y = a
    T, lam, red = _T(kw), float(kw.get("lam", 0.1)), kw.get("reduction", "mean")
    hard = np.asarray(R.hinton_loss(s, t, y, temperature=T, lam=1.0, reduction=red))
    soft = np.asarray(R.soft_cross_entropy(s, t, temperature=T, reduction=red))
    return (1.0 - lam) * hard + lam * T * T * soft


def _hinton_kl(a: Args, kw: dict[str, Any]) -> np.ndarray:
    s, t, y = a
    T, lam, red = _T(kw), float(kw.get("lam", 0.1)), kw.get("reduction", "mean")
    hard = np.asarray(R.hinton_loss(s, t, y, temperature=T, lam=1.0, reduction=red))
    return lam * hard + (1.0 - lam) * np.asarray(R.kd_loss(s, t, temperature=T, reduction=red))


def _dkd_weighted(a: Args, kw: dict[str, Any]) -> np.ndarray:
    s, t, y = a
    T, red = _T(kw), kw.get("reduction", "mean")
    p_t = np.take_along_axis(_softmax(t, T), y[..., None], -1)[..., 0]
    tc = R.tckd(s, t, y, temperature=T, reduction="none")
    nc = R.nckd(s, t, y, temperature=T, reduction="none")
    return _reduce(T * T * (float(kw.get("alpha", 1.0)) * tc + float(kw.get("beta", 8.0)) * (1 - p_t) * nc), red)


CANDIDATES: dict[str, list[Candidate]] = {
    "kd_loss": [
        *_common_scales("kd_loss", "temperature", 2),
        Candidate("T²·KL(σ(s/T) ‖ σ(t/T))", "the KL direction is reversed (student distribution first)", _kl_reversed),
        Candidate(
            "T²·soft_cross_entropy",
            "this is the soft cross-entropy: the KL plus the teacher's entropy",
            _soft_ce_for_kd,
        ),
        Candidate(
            "soft_cross_entropy",
            "this is the soft cross-entropy without T²",
            lambda a, kw: _soft_ce_for_kd(a, kw) / _T(kw) ** 2,
        ),
    ],
    "soft_cross_entropy": [
        *_common_scales("soft_cross_entropy", "temperature", 0),
        Candidate("kd_loss / T²", "this is the KL: the teacher's entropy is missing", _kl_for_soft_ce),
        Candidate(
            "kd_loss", "this is T²·KL, not the soft cross-entropy", lambda a, kw: _kl_for_soft_ce(a, kw) * _T(kw) ** 2
        ),
    ],
    "hinton_loss": [
        *_common_scales("hinton_loss", None, 0),
        Candidate(
            "λ on the soft term",
            "λ weights the soft term instead of the hard CE (DeiT's convention)",
            _hinton_lambda_swapped,
        ),
        Candidate(
            "KL in place of soft CE",
            "the soft term is T²·KL, not T²·soft CE (they differ by T²·H(teacher))",
            _hinton_kl,
        ),
    ],
    "tckd": _common_scales("tckd", "temperature", 0),
    "nckd": _common_scales("nckd", "temperature", 0),
    "dkd_loss": [
        *_common_scales("dkd_loss", "temperature", 2),
        Candidate(
            "T²·(α·TCKD + β·(1 − p_t)·NCKD)",
            "NCKD carries the per-sample (1 − p_t) weight of KD's decomposition; DKD's β replaces it",
            _dkd_weighted,
        ),
    ],
}


def _with(fn: str, **override: Any) -> Callable[[Args, dict[str, Any]], np.ndarray]:
    """The reference value of ``fn`` with some keywords overridden (an official variant kdref offers)."""
    return lambda a, kw: np.asarray(getattr(R, fn)(*a, **{**kw, **override}))


def _cos_rows(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))


def _uncentred(fn: str) -> Callable[[Args, dict[str, Any]], np.ndarray]:
    """DIST with cosine similarity of the raw probability vectors (no centring) in place of Pearson."""

    def value(a: Args, kw: dict[str, Any]) -> np.ndarray:
        tau = float(kw.get("tau", 1.0))
        ys, yt = _softmax(a[0], tau).reshape(-1, _C(a)), _softmax(a[1], tau).reshape(-1, _C(a))
        inter, intra = 1 - _cos_rows(ys, yt).mean(), 1 - _cos_rows(ys.T, yt.T).mean()
        if fn == "inter_class_relation":
            return np.asarray(inter)
        if fn == "intra_class_relation":
            return np.asarray(intra)
        return np.asarray(tau * tau * (float(kw.get("beta", 2.0)) * inter + float(kw.get("gamma", 2.0)) * intra))

    return value


for _fn in ("inter_class_relation", "intra_class_relation", "dist_loss"):
    CANDIDATES[_fn] = [
        *_common_scales(_fn, "tau", 2 if _fn == "dist_loss" else 0),
        Candidate(
            "ε added to the product of norms",
            "Pearson with the official DIST ε (ρ = ⟨û, v̂⟩/(‖û‖‖v̂‖ + ε)); kdref offers it as eps_mode='product_add'",
            _with(_fn, eps_mode="product_add"),
        ),
        Candidate(
            "ε clamping each norm",
            "Pearson with torchdistill's ε (each norm clamped at ε); kdref offers it as eps_mode='norm_clamp'",
            _with(_fn, eps_mode="norm_clamp"),
        ),
        Candidate(
            "cosine of uncentred vectors",
            "the vectors are not centred: this is cosine similarity, not Pearson correlation",
            _uncentred(_fn),
        ),
    ]
CANDIDATES["pearson"] = [
    Candidate(
        "ε added to the product of norms",
        "the official DIST ε (eps_mode='product_add')",
        _with("pearson", eps_mode="product_add"),
    ),
    Candidate(
        "ε clamping each norm", "torchdistill's ε (eps_mode='norm_clamp')", _with("pearson", eps_mode="norm_clamp")
    ),
]
CANDIDATES["deit_soft_loss"] = [
    Candidate(
        "KL divided by N·C",
        "the KL term is averaged over N·C elements, DeiT's official normalisation (kl_normalization='numel')",
        _with("deit_soft_loss", kl_normalization="numel"),
    ),
    *_common_scales("deit_soft_loss", None, 0),
]
CANDIDATES["deit_loss"] = [
    Candidate(
        "KL divided by N·C",
        "the KL term is averaged over N·C elements, DeiT's official normalisation (kl_normalization='numel')",
        _with("deit_loss", kl_normalization="numel"),
    ),
]
CANDIDATES["funmatch_loss"] = _common_scales("funmatch_loss", "temperature", 2)


def _feature_scale(kind: str) -> Callable[[Args, dict[str, Any]], float]:
    def factor(a: Args, kw: dict[str, Any]) -> float:
        return float(a[0].size) if kind == "all" else float(a[0].size // a[0].shape[0])

    return factor


CANDIDATES["simkd_loss"] = [
    _scaled(
        "simkd_loss",
        "simkd_loss × numel",
        "this is the squared norm ‖f_t − P(f_s)‖² (the paper's sum), not the "
        "mean over B·C·H·W elements the official code trains with",
        _feature_scale("all"),
    ),
    _scaled(
        "simkd_loss",
        "simkd_loss × C·H·W",
        "this sums over each sample's features and averages over the batch",
        _feature_scale("sample"),
    ),
]


def register(fn: str, *candidates: Candidate) -> None:
    """Add candidates for a contract function (methods register theirs next to their checks)."""
    CANDIDATES.setdefault(fn, []).extend(candidates)


def diagnose(
    fn: str, observations: list[tuple[Args, dict[str, Any], np.ndarray]], *, rtol: float = 1e-4, atol: float = 1e-6
) -> list[Candidate]:
    """The candidates whose values match every observation (args, keywords, the implementation's value)."""
    if fn not in CONTRACT:
        return []
    found = []
    for cand in CANDIDATES.get(fn, []):
        try:
            ok = all(_close(cand.value(args, kw), value, rtol, atol) for args, kw, value in observations)
        except Exception:  # a candidate that cannot evaluate an input does not explain it
            ok = False
        if ok:
            found.append(cand)
    return found


def _close(expected: np.ndarray, actual: np.ndarray, rtol: float, atol: float) -> bool:
    e, a = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    return (
        e.shape == a.shape and bool(np.all(np.isfinite(e))) and bool(np.all(np.abs(a - e) <= atol + rtol * np.abs(e)))
    )


def explain(fn: str, found: list[Candidate]) -> str:
    """One line per matching candidate, for an assertion message."""
    return "\n".join(f"diagnosis: {fn} = {c.label} for every input tried: {c.meaning}" for c in found)
