"""Function matching (Beyer et al., CVPR 2022, arXiv:2106.05237) in PyTorch: the loss and the batch mixup."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import check_real, fail
from ._ops import check_logits, reduce, tempered_rows
from .hinton import _kl_rows

__all__ = ["funmatch_loss", "mixup_batch", "mixup_coefficient"]


def funmatch_loss(student_logits: Tensor, teacher_logits: Tensor, *, temperature: float = 1.0) -> Tensor:
    r"""Mean over samples of T²·KL(σ(t/T) ‖ σ(s/T)) (Beyer et al. 2022, Eq. 1 with the official T² factor).

    The big_vision ``kl`` distance, computed exactly (the official code clips the teacher probabilities at 1e-8
    inside the log, which overestimates the KL by at most (C − 1)·T²·1e-8/e per sample). It equals
    ``kd_loss(s, t, temperature=T, reduction="mean")``; the default T = 1 is the ImageNet config (bit_i1k). There is
    no ground-truth term: the paper trains on this loss alone, with teacher and student fed the *same* mixed image
    (see :func:`mixup_batch`).

    Note the argument order: the student comes first in the call, the teacher distribution first in the KL.

    Shape:
        student_logits, teacher_logits: (N, C) or (..., C), C ≥ 2. Output: a scalar (mean over all samples).

    Half-precision inputs are computed and returned in float32; float64 stays float64. The gradient flows to the
    student logits only.
    """
    fn = "funmatch_loss"
    s, t, T = tempered_rows(fn, student_logits, teacher_logits, temperature)
    rows = T * T * _kl_rows(torch.log_softmax(t, -1), torch.log_softmax(s, -1))
    return reduce(
        fn,
        rows,
        "mean",
        student_logits.shape[:-1],
        {"student_logits": student_logits, "teacher_logits": teacher_logits},
    )


def mixup_batch(*arrays: Tensor, a: float) -> tuple[Tensor, ...]:
    r"""x̃ = a·x + (1 − a)·roll(x, 1, dim=0) for every tensor, one a ← max(a, 1 − a) per batch (Beyer et al. 2022).

    The big_vision mixup: a single coefficient for the whole batch, folded to [0.5, 1], and each example mixed with
    its neighbour ``x[i − 1]``. The same coefficient and roll apply to every tensor passed (images, one-hot labels,
    per-model inputs), so the mixed tensors stay aligned; feed the mixed images to *both* teacher and student.

    Shape:
        each tensor: (B, ...) with the same B ≥ 1; all on one device. Returns a tuple of tensors of the input shapes
        and dtypes, in order. Differentiable (a linear map of the inputs).
    """
    fn = "mixup_batch"
    if not arrays:
        fail(fn, "expects at least one tensor to mix, got none")
    a = check_real(fn, "a", a, low=0.0, high=1.0)
    a = max(a, 1.0 - a)
    xs = [check_logits(fn, f"arrays[{i}]", x) for i, x in enumerate(arrays)]
    for i, x in enumerate(xs):
        if x.dim() < 1 or x.shape[0] == 0:
            fail(fn, f"`arrays[{i}]` must have a non-empty batch dimension 0, got shape {tuple(x.shape)}")
        if x.shape[0] != xs[0].shape[0]:
            fail(
                fn,
                f"`arrays[{i}]` has batch size {x.shape[0]} but `arrays[0]` has {xs[0].shape[0]}; "
                "every tensor must share the batch dimension 0",
            )
        if x.device != xs[0].device:
            fail(fn, f"`arrays[{i}]` is on {x.device} but `arrays[0]` is on {xs[0].device}; they must share a device")
    return tuple(a * x + (1.0 - a) * torch.roll(x, 1, 0) for x in xs)


def _uniform(generator: torch.Generator) -> float:
    return float(torch.rand((), generator=generator, dtype=torch.float64))


def _gamma(shape: float, generator: torch.Generator) -> float:
    """One Gamma(shape, 1) draw by Marsaglia–Tsang (2000), boosted by U^(1/shape) for shape < 1."""
    if shape < 1.0:
        return _gamma(shape + 1.0, generator) * _uniform(generator) ** (1.0 / shape)
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = float(torch.randn((), generator=generator, dtype=torch.float64))
        v = (1.0 + c * x) ** 3
        if v <= 0.0:
            continue
        u = _uniform(generator)
        if u > 0.0 and math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v


def mixup_coefficient(generator: torch.Generator, p: float = 1.0) -> float:
    r"""a = max(b, 1 − b) with b ~ Beta(p, p): one mixup coefficient in [0.5, 1] (big_vision ``get_mixup``).

    The default p = 1 is the paper's "aggressive" mixup (b uniform on [0, 1]). Draws only from ``generator`` (a
    ``torch.Generator``), so a seeded generator gives a reproducible sequence. Returns a Python float, to pass to
    :func:`mixup_batch`.
    """
    fn = "mixup_coefficient"
    if not isinstance(generator, torch.Generator):
        fail(fn, f"`generator` must be a torch.Generator, got {type(generator).__name__}", TypeError)
    p = check_real(fn, "p", p, low=0.0, low_open=True)
    if p == 1.0:
        b = _uniform(generator)
    else:
        g1, g2 = _gamma(p, generator), _gamma(p, generator)
        b = g1 / (g1 + g2) if g1 + g2 > 0.0 else 0.5
    return max(b, 1.0 - b)
