"""The PyTorch tier: the losses to import into training code (any device, float64/32/bfloat16/float16)."""

from ._ops import set_value_checks
from .dkd import dkd_loss, dkd_warmup_factor, nckd, tckd
from .hinton import hinton_loss, kd_loss, soft_cross_entropy
from .modules import DKDLoss, HintonLoss, KDLoss, NCKDLoss, SoftCrossEntropyLoss, TCKDLoss

__all__ = [
    "DKDLoss",
    "HintonLoss",
    "KDLoss",
    "NCKDLoss",
    "SoftCrossEntropyLoss",
    "TCKDLoss",
    "dkd_loss",
    "dkd_warmup_factor",
    "hinton_loss",
    "kd_loss",
    "nckd",
    "set_value_checks",
    "soft_cross_entropy",
    "tckd",
]
