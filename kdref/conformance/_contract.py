"""The public contract: each function's positional arguments (arrays) and its keywords."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    """A contract function: positional array arguments by name, and its keyword-only arguments."""

    args: tuple[str, ...]
    keywords: tuple[str, ...]


_PAIR = ("student_logits", "teacher_logits")
_PAIR_Y = (*_PAIR, "target")

CONTRACT: dict[str, Spec] = {
    "kd_loss": Spec(_PAIR, ("temperature", "reduction")),
    "soft_cross_entropy": Spec(_PAIR, ("temperature", "reduction")),
    "hinton_loss": Spec(_PAIR_Y, ("temperature", "lam", "reduction")),
    "tckd": Spec(_PAIR_Y, ("temperature", "reduction")),
    "nckd": Spec(_PAIR_Y, ("temperature", "reduction")),
    "dkd_loss": Spec(_PAIR_Y, ("alpha", "beta", "temperature", "reduction")),
}


def is_integer_arg(name: str) -> bool:
    """Arguments holding class indices rather than floating-point values."""
    return name == "target"
