"""Hypothesis strategies for logits, from tame to extreme (|z|/T up to 1e4), with labelled draws.

A drawn :class:`Case` prints as Python that rebuilds it exactly, so a failure can be pasted into a session.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from ._impl import Implementation

#: How far logits spread, in units of the temperature: |z|/T reaches about this much.
REGIMES: dict[str, float] = {"tame": 1.0, "wide": 20.0, "extreme": 1e4}

TEMPERATURES = (0.01, 0.1, 0.5, 1.0, 2.0, 4.0, 10.0, 100.0)


def _array_repr(x: np.ndarray) -> str:
    return "np." + repr(np.asarray(x)).replace("\n", "").replace("       ", " ")


@dataclass
class Case:
    """One drawn input: student and teacher logits (already in the dtype under test), targets, temperature."""

    student: np.ndarray
    teacher: np.ndarray
    target: np.ndarray
    temperature: float
    regime: str = "tame"

    @property
    def classes(self) -> int:
        return int(self.student.shape[-1])

    @property
    def samples(self) -> int:
        return int(np.prod(self.student.shape[:-1]))

    def __repr__(self) -> str:
        with np.printoptions(precision=17, floatmode="maxprec", threshold=100000, linewidth=100000):
            return (
                f"Case(student={_array_repr(self.student)}, teacher={_array_repr(self.teacher)}, "
                f"target={_array_repr(self.target)}, temperature={self.temperature!r}, regime={self.regime!r})"
            )


def temperatures() -> st.SearchStrategy[float]:
    """Temperatures across four decades, the round values people use and arbitrary ones between."""
    return st.one_of(st.sampled_from(TEMPERATURES), st.floats(0.05, 50.0, allow_nan=False, allow_infinity=False))


def _logits(rng: np.random.Generator, shape: tuple[int, ...], spread: float, kind: str) -> np.ndarray:
    z = rng.standard_normal(shape) * spread
    if kind == "peaked":
        idx = rng.integers(0, shape[-1], shape[:-1])
        np.put_along_axis(z, idx[..., None], np.take_along_axis(z, idx[..., None], -1) + 3.0 * spread, -1)
    elif kind == "ties":
        z = np.round(z / max(spread, 1e-300) * 2.0) * spread / 2.0
    elif kind == "offset":
        z = z + rng.choice([-1.0, 1.0]) * 50.0 * spread
    return z


@st.composite
def cases(
    draw: st.DrawFn,
    impl: Implementation,
    *,
    min_classes: int = 2,
    max_classes: int = 12,
    regimes: tuple[str, ...] = ("tame", "wide", "extreme"),
    large_classes: bool = True,
    temperature: st.SearchStrategy[float] | None = None,
    min_samples: int = 1,
) -> Case:
    """Student/teacher logits of shape (N, C) or (a, b, C), integer targets, and a temperature.

    ``min_samples`` > 1 gives (N, C) with N ≥ min_samples: a law "f ∝ g" needs several samples to pin the factor.
    """
    shapes = st.one_of(st.tuples(st.integers(1, 6)), st.tuples(st.integers(1, 3), st.integers(1, 3)))
    if min_samples > 1:
        shapes = st.tuples(st.integers(min_samples, max(min_samples, 6)))
    lead = draw(shapes, label="leading shape")
    class_counts = st.integers(min_classes, max_classes)
    if large_classes:
        class_counts = st.one_of(class_counts, st.sampled_from([max(min_classes, 100), max(min_classes, 1000)]))
    C = draw(class_counts, label="classes")
    T = draw(temperature if temperature is not None else temperatures(), label="temperature")
    regime = draw(st.sampled_from(regimes), label="regime")
    kinds = st.sampled_from(["normal", "peaked", "ties", "offset"])
    s_kind, t_kind = draw(kinds, label="student kind"), draw(kinds, label="teacher kind")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    shape = (*lead, C)
    spread = REGIMES[regime] * T
    cap = impl.max_abs / 4.0
    s = impl.round(np.clip(_logits(rng, shape, spread, s_kind), -cap, cap))
    t = impl.round(np.clip(_logits(rng, shape, spread, t_kind), -cap, cap))
    y = rng.integers(0, C, lead)
    return Case(s, t, y, float(T), regime)


def grad_outputs(case: Case, reduction: str) -> np.ndarray:
    """A cotangent ≠ 1 (the loss is not the last op): deterministic per case."""
    rng = np.random.default_rng(case.classes * 7919 + case.samples)
    shape = case.student.shape[:-1] if reduction == "none" else ()
    return np.asarray(rng.uniform(0.5, 2.0, shape))
