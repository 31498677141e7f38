"""Function matching (Beyer et al., CVPR 2022, arXiv:2106.05237) in NumPy float64: the loss and the batch mixup.

The loss is Hinton's T²-scaled KL averaged over samples (the big_vision ``kl`` distance, computed exactly here, without
the official 1e-8 clip); the method's substance is that teacher and student see the same mixed image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_real, fail
from ._ops import Array, as_logits, grad_scale, kl_rows, reduce
from .hinton import _tempered

__all__ = ["funmatch_loss", "funmatch_loss_grad", "mixup_batch", "mixup_coefficient"]


def funmatch_loss(student_logits: Any, teacher_logits: Any, *, temperature: float = 1.0) -> Array:
    """mean over samples of T²·KL(σ(t/T) ‖ σ(s/T)) (Beyer et al. 2022, Eq. 1 with the code's T²; T = 1 on ImageNet)."""
    log_q, log_p, T = _tempered("funmatch_loss", student_logits, teacher_logits, temperature)
    return reduce("funmatch_loss", T * T * kl_rows(log_p, log_q), "mean")


def funmatch_loss_grad(
    student_logits: Any, teacher_logits: Any, *, temperature: float = 1.0, grad_output: Any = None
) -> Array:
    """∂funmatch_loss/∂s = T·(σ(s/T) − σ(t/T))/N (Beyer et al. 2022; Hinton's gradient times T², mean over N)."""
    log_q, log_p, T = _tempered("funmatch_loss_grad", student_logits, teacher_logits, temperature)
    g = grad_scale("funmatch_loss_grad", log_q.shape[:-1], "mean", grad_output)
    return g * T * (np.exp(log_q) - np.exp(log_p))


def _fold(fn: str, a: Any) -> float:
    """a ← max(a, 1 − a) for a ∈ [0, 1] (big_vision's fold of the mixup coefficient to [0.5, 1])."""
    a = check_real(fn, "a", a, low=0.0, high=1.0)
    return max(a, 1.0 - a)


def mixup_batch(*arrays: Any, a: float) -> tuple[Array, ...]:
    """x̃ = a·x + (1 − a)·roll(x, 1, axis=0) for every array, one a ← max(a, 1 − a) per batch (Beyer et al. 2022).

    Every array (images, one-hot labels, per-model inputs) must have the same batch size along axis 0; each example
    is mixed with its neighbour ``x[i − 1]`` with the same coefficient, so the mixed arrays stay aligned. Returns a
    tuple of float64 arrays, one per input, in order.
    """
    fn = "mixup_batch"
    if not arrays:
        fail(fn, "expects at least one array to mix, got none")
    a = _fold(fn, a)
    xs = [as_logits(fn, f"arrays[{i}]", x) for i, x in enumerate(arrays)]
    for i, x in enumerate(xs):
        if x.ndim < 1 or x.shape[0] == 0:
            fail(fn, f"`arrays[{i}]` must have a non-empty batch axis 0, got shape {x.shape}")
        if x.shape[0] != xs[0].shape[0]:
            fail(
                fn,
                f"`arrays[{i}]` has batch size {x.shape[0]} but `arrays[0]` has {xs[0].shape[0]}; "
                "every array must share the batch axis 0",
            )
    return tuple(a * x + (1.0 - a) * np.roll(x, 1, axis=0) for x in xs)


def mixup_coefficient(rng: np.random.Generator, p: float = 1.0) -> float:
    """a = max(b, 1 − b) with b ~ Beta(p, p): one mixup coefficient in [0.5, 1] (big_vision ``get_mixup``, p = 1)."""
    fn = "mixup_coefficient"
    if not isinstance(rng, np.random.Generator):
        fail(fn, f"`rng` must be a numpy.random.Generator, got {type(rng).__name__}", TypeError)
    p = check_real(fn, "p", p, low=0.0, low_open=True)
    b = float(rng.beta(p, p))
    return max(b, 1.0 - b)
