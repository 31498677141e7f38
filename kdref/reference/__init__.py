"""The NumPy float64 tier: the losses written to read like the equations, with analytic gradients."""

from .dkd import dkd_loss, dkd_loss_grad, dkd_warmup_factor, nckd, nckd_grad, tckd, tckd_grad
from .hinton import (
    hinton_loss,
    hinton_loss_grad,
    kd_loss,
    kd_loss_grad,
    soft_cross_entropy,
    soft_cross_entropy_grad,
    teacher_entropy,
)

__all__ = [
    "dkd_loss",
    "dkd_loss_grad",
    "dkd_warmup_factor",
    "hinton_loss",
    "hinton_loss_grad",
    "kd_loss",
    "kd_loss_grad",
    "nckd",
    "nckd_grad",
    "soft_cross_entropy",
    "soft_cross_entropy_grad",
    "tckd",
    "tckd_grad",
    "teacher_entropy",
]
