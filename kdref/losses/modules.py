"""``nn.Module`` wrappers of the Torch losses, for code that prefers modules; each holds only its keywords."""

from __future__ import annotations

from torch import Tensor, nn

from .._checks import check_real, check_reduction, check_temperature
from .dkd import dkd_loss, nckd, tckd
from .hinton import hinton_loss, kd_loss, soft_cross_entropy

__all__ = ["DKDLoss", "HintonLoss", "KDLoss", "NCKDLoss", "SoftCrossEntropyLoss", "TCKDLoss"]


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
