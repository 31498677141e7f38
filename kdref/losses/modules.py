"""``nn.Module`` wrappers of the Torch losses, for code that prefers modules; each holds only its keywords."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .._checks import check_real, check_reduction, check_temperature
from .deit import deit_hard_loss, deit_loss, deit_soft_loss
from .dist import dist_loss
from .dkd import dkd_loss, nckd, tckd
from .funmatch import funmatch_loss
from .hinton import hinton_loss, kd_loss, soft_cross_entropy
from .simkd import simkd_loss

__all__ = [
    "DISTLoss",
    "DKDLoss",
    "DeiTHardLoss",
    "DeiTLoss",
    "DeiTSoftLoss",
    "FunMatchLoss",
    "HintonLoss",
    "KDLoss",
    "NCKDLoss",
    "SimKDLoss",
    "SoftCrossEntropyLoss",
    "TCKDLoss",
]


class _TemperedLoss(nn.Module):
    def __init__(self, *, temperature: float = 4.0, reduction: str = "mean"):
        super().__init__()
        name = type(self).__name__
        self.temperature = check_temperature(name, temperature)
        self.reduction = check_reduction(name, reduction)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._keywords().items())

    def _keywords(self) -> dict[str, object]:
        return {"temperature": self.temperature, "reduction": self.reduction}


class KDLoss(_TemperedLoss):
    """T²·KL(σ(t/T) ‖ σ(s/T)), the module form of :func:`kdref.kd_loss` (Hinton et al. 2015)."""

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        return kd_loss(student_logits, teacher_logits, **self._keywords())  # type: ignore[arg-type]


class SoftCrossEntropyLoss(_TemperedLoss):
    """−Σ σ(t/T) log σ(s/T), the module form of :func:`kdref.soft_cross_entropy` (Hinton et al. 2015)."""

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        return soft_cross_entropy(student_logits, teacher_logits, **self._keywords())  # type: ignore[arg-type]


class HintonLoss(_TemperedLoss):
    """λ·CE + (1 − λ)·T²·soft CE, the module form of :func:`kdref.hinton_loss` (Hinton et al. 2015)."""

    def __init__(self, *, temperature: float = 4.0, lam: float = 0.1, reduction: str = "mean"):
        super().__init__(temperature=temperature, reduction=reduction)
        self.lam = check_real("HintonLoss", "lam", lam, low=0.0, high=1.0)

    def _keywords(self) -> dict[str, object]:
        return {**super()._keywords(), "lam": self.lam}

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, target: Tensor) -> Tensor:
        return hinton_loss(student_logits, teacher_logits, target, **self._keywords())  # type: ignore[arg-type]


class TCKDLoss(_TemperedLoss):
    """KL(b_teacher ‖ b_student), the module form of :func:`kdref.tckd` (Zhao et al. 2022)."""

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, target: Tensor) -> Tensor:
        return tckd(student_logits, teacher_logits, target, **self._keywords())  # type: ignore[arg-type]


class NCKDLoss(_TemperedLoss):
    """KL(p̂_teacher ‖ p̂_student), the module form of :func:`kdref.nckd` (Zhao et al. 2022)."""

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, target: Tensor) -> Tensor:
        return nckd(student_logits, teacher_logits, target, **self._keywords())  # type: ignore[arg-type]


class DKDLoss(_TemperedLoss):
    """T²·(α·TCKD + β·NCKD), the module form of :func:`kdref.dkd_loss` (Zhao et al. 2022)."""

    def __init__(self, *, alpha: float = 1.0, beta: float = 8.0, temperature: float = 4.0, reduction: str = "mean"):
        super().__init__(temperature=temperature, reduction=reduction)
        self.alpha = check_real("DKDLoss", "alpha", alpha, low=0.0)
        self.beta = check_real("DKDLoss", "beta", beta, low=0.0)

    def _keywords(self) -> dict[str, object]:
        return {"alpha": self.alpha, "beta": self.beta, **super()._keywords()}

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, target: Tensor) -> Tensor:
        return dkd_loss(student_logits, teacher_logits, target, **self._keywords())  # type: ignore[arg-type]


class _KeywordLoss(nn.Module):
    """Holds a loss function's keywords; they are validated at construction by one call on a tiny input."""

    function: ClassVar[Callable[..., Tensor]]
    probe: ClassVar[Callable[[], tuple[Tensor, ...]]]

    def __init__(self, **keywords: Any):
        super().__init__()
        self.keywords = keywords
        type(self).function(*type(self).probe(), **keywords)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.keywords.items())

    def forward(self, *args: Tensor) -> Tensor:
        return type(self).function(*args, **self.keywords)


def _pair() -> tuple[Tensor, ...]:
    return torch.zeros(2, 3), torch.zeros(2, 3)


def _pair_target() -> tuple[Tensor, ...]:
    return torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)


class DISTLoss(_KeywordLoss):
    """τ²·(β·inter + γ·intra), the module form of :func:`kdref.dist_loss` (Huang et al. 2022); keywords as there."""

    function = staticmethod(dist_loss)
    probe = staticmethod(_pair)

    def __init__(
        self, *, beta: float = 2.0, gamma: float = 2.0, tau: float = 1.0, eps_mode: str = "exact", eps: float = 1e-8
    ):
        super().__init__(beta=beta, gamma=gamma, tau=tau, eps_mode=eps_mode, eps=eps)


class DeiTSoftLoss(_KeywordLoss):
    """(1 − α)·CE + α·τ²·KL, the module form of :func:`kdref.deit_soft_loss` (Touvron et al. 2021)."""

    function = staticmethod(deit_soft_loss)
    probe = staticmethod(_pair_target)

    def __init__(self, *, alpha: float = 0.1, tau: float = 3.0, kl_normalization: str = "batch"):
        super().__init__(alpha=alpha, tau=tau, kl_normalization=kl_normalization)


class DeiTHardLoss(_KeywordLoss):
    """½·CE(s, y) + ½·CE(s, argmax t), the module form of :func:`kdref.deit_hard_loss` (Touvron et al. 2021)."""

    function = staticmethod(deit_hard_loss)
    probe = staticmethod(_pair_target)

    def __init__(self) -> None:
        super().__init__()


class DeiTLoss(_KeywordLoss):
    """The class-token/distillation-token objective, the module form of :func:`kdref.deit_loss`."""

    function = staticmethod(deit_loss)
    probe = staticmethod(lambda: (torch.zeros(2, 3), *_pair_target()))

    def __init__(
        self, *, distillation: str = "hard", alpha: float = 0.5, tau: float = 1.0, kl_normalization: str = "batch"
    ):
        super().__init__(distillation=distillation, alpha=alpha, tau=tau, kl_normalization=kl_normalization)


class FunMatchLoss(_KeywordLoss):
    """t²·KL(σ(t/T) ‖ σ(s/T)) batch-mean, the module form of :func:`kdref.funmatch_loss` (Beyer et al. 2022)."""

    function = staticmethod(funmatch_loss)
    probe = staticmethod(_pair)

    def __init__(self, *, temperature: float = 1.0):
        super().__init__(temperature=temperature)


class SimKDLoss(_KeywordLoss):
    """Mean squared error of projected student and teacher features, the module form of :func:`kdref.simkd_loss`."""

    function = staticmethod(simkd_loss)
    probe = staticmethod(_pair)

    def __init__(self) -> None:
        super().__init__()
