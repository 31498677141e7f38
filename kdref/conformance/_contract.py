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
_DIST_KW = ("tau", "eps_mode", "eps")

CONTRACT: dict[str, Spec] = {
    # hinton
    "kd_loss": Spec(_PAIR, ("temperature", "reduction")),
    "soft_cross_entropy": Spec(_PAIR, ("temperature", "reduction")),
    "hinton_loss": Spec(_PAIR_Y, ("temperature", "lam", "reduction")),
    # dkd
    "tckd": Spec(_PAIR_Y, ("temperature", "reduction")),
    "nckd": Spec(_PAIR_Y, ("temperature", "reduction")),
    "dkd_loss": Spec(_PAIR_Y, ("alpha", "beta", "temperature", "reduction")),
    # dist
    "pearson": Spec(("x", "y"), ("dim", "eps_mode", "eps")),
    "inter_class_relation": Spec(_PAIR, _DIST_KW),
    "intra_class_relation": Spec(_PAIR, _DIST_KW),
    "dist_loss": Spec(_PAIR, ("beta", "gamma", *_DIST_KW)),
    # deit
    "deit_soft_loss": Spec(_PAIR_Y, ("alpha", "tau", "kl_normalization")),
    "deit_hard_loss": Spec(_PAIR_Y, ()),
    "deit_loss": Spec(
        ("cls_logits", "dist_logits", "teacher_logits", "target"), ("distillation", "alpha", "tau", "kl_normalization")
    ),
    "deit_predict": Spec(("cls_logits", "dist_logits"), ("fusion",)),
    # funmatch
    "funmatch_loss": Spec(_PAIR, ("temperature",)),
    # simkd
    "simkd_loss": Spec(("projected_student_features", "teacher_features"), ()),
}


def is_integer_arg(name: str) -> bool:
    """Arguments holding class indices rather than floating-point values."""
    return name == "target"
