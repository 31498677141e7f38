"""SimKD (Chen et al., CVPR 2022, arXiv:2203.14001) in PyTorch: loss, projector, spatial alignment, reused head.

Training recipe (the official scripts): ``f_s, f_t = align_spatial(f_s, f_t)``; ``loss = simkd_loss(projector(f_s),
f_t)`` alone (no CE, no KL); the student predicts with the frozen teacher classifier,
``reused_teacher_logits(projector(f_s), freeze_(teacher_fc))``, or with :class:`SimKDStudent`, which combines the three.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_feature_pair, fail
from ._ops import check_logits, compute_dtype, reduce

__all__ = [
    "SimKDOutput",
    "SimKDProjector",
    "SimKDStudent",
    "align_spatial",
    "freeze_",
    "reused_teacher_logits",
    "simkd_loss",
]


def simkd_loss(projected_student_features: Tensor, teacher_features: Tensor) -> Tensor:
    r"""Mean over all B·C·H·W elements of (P(f_s) − f_t)² (Chen et al. 2022, Eq. 3 as the official code trains it).

    The paper writes the squared norm ‖f_t − P(f_s)‖² (a sum); the official ``nn.MSELoss`` divides it by the
    number of elements, a constant factor 1/(B·C·H·W) that kdref follows.

    Shape:
        projected_student_features, teacher_features: the same shape (B, D) or (B, C, H, W) (any rank ≥ 2); align
        spatial sizes first with :func:`align_spatial`. Output: a scalar.

    Half-precision inputs are computed and returned in float32; float64 stays float64. The teacher features are
    detached: the gradient flows to the projected student features only.
    """
    fn = "simkd_loss"
    p = check_logits(fn, "projected_student_features", projected_student_features)
    t = check_logits(fn, "teacher_features", teacher_features)
    check_feature_pair(fn, p.shape, t.shape)
    if p.device != t.device:
        fail(fn, f"`teacher_features` is on {t.device} but `projected_student_features` is on {p.device}")
    dt = compute_dtype(p, t)
    sq = (p.to(dt) - t.detach().to(dt)).square().reshape(-1)
    return reduce(fn, sq, "mean", torch.Size([]), {"projected_student_features": p, "teacher_features": t.detach()})


def _check_maps(fn: str, name: str, x: object) -> Tensor:
    x = check_logits(fn, name, x)
    if x.dim() != 4:
        fail(fn, f"`{name}` must be a (B, C, H, W) feature map, got shape {tuple(x.shape)}")
    return x


def align_spatial(student_features: Tensor, teacher_features: Tensor) -> tuple[Tensor, Tensor]:
    r"""Adaptive-average-pool the larger of two (B, C, H, W) maps down to the smaller spatial size (Chen et al. 2022).

    As the official SimKD does, before the projector: if the student's map is larger it is pooled, if the teacher's
    is larger it is pooled; height and width are treated separately (size (min H, min W)); a map already of that
    size is returned unchanged. Channels may differ (the projector maps them). Returns ``(student, teacher)``.
    """
    fn = "align_spatial"
    s = _check_maps(fn, "student_features", student_features)
    t = _check_maps(fn, "teacher_features", teacher_features)
    if s.shape[0] != t.shape[0]:
        fail(fn, f"`teacher_features` has batch size {t.shape[0]} but `student_features` has {s.shape[0]}")
    if s.device != t.device:
        fail(fn, f"`teacher_features` is on {t.device} but `student_features` is on {s.device}")
    size = (min(s.shape[2], t.shape[2]), min(s.shape[3], t.shape[3]))

    def pool(x: Tensor) -> Tensor:
        return x if tuple(x.shape[2:]) == size else F.adaptive_avg_pool2d(x, size)

    return pool(s), pool(t)


def _channels(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail("SimKDProjector", f"`{name}` must be an integer >= 1, got {value!r}")
    return value  # type: ignore[return-value]


class SimKDProjector(nn.Module):
    r"""P: 1×1 conv (s_n → t_n/f) → BN → ReLU → 3×3 conv (t_n/f → t_n/f) → BN → ReLU → 1×1 conv (t_n/f → t_n) → BN → ReLU.

    The SimKD projector (Chen et al. 2022; official ``factor=2``, the README's best), convolutions without bias. The
    final ReLU matches post-ReLU teacher features. Spatial size is preserved; align it beforehand with
    :func:`align_spatial`.

    Shape:
        input (B, student_channels, H, W); output (B, teacher_channels, H, W).
    """

    def __init__(self, student_channels: int, teacher_channels: int, *, factor: int = 2):
        super().__init__()
        s_n = _channels("student_channels", student_channels)
        t_n = _channels("teacher_channels", teacher_channels)
        f = _channels("factor", factor)
        if t_n % f:
            fail("SimKDProjector", f"`teacher_channels` ({t_n}) must be divisible by `factor` ({f})")
        mid = t_n // f
        self.student_channels, self.teacher_channels, self.factor = s_n, t_n, f
        self.layers = nn.Sequential(
            nn.Conv2d(s_n, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, t_n, 1, bias=False),
            nn.BatchNorm2d(t_n),
            nn.ReLU(inplace=True),
        )

    def extra_repr(self) -> str:
        return (
            f"student_channels={self.student_channels}, teacher_channels={self.teacher_channels}, factor={self.factor}"
        )

    def forward(self, student_features: Tensor) -> Tensor:
        x = _check_maps("SimKDProjector", "student_features", student_features)
        if x.shape[1] != self.student_channels:
            fail(
                "SimKDProjector",
                f"`student_features` must have {self.student_channels} channels, got shape {tuple(x.shape)}",
            )
        return self.layers(x)


def freeze_(module: nn.Module) -> nn.Module:
    """Freeze ``module`` in place (no parameter requires grad, eval mode) and return it: the SimKD teacher head."""
    if not isinstance(module, nn.Module):
        fail("freeze_", f"`module` must be a torch.nn.Module, got {type(module).__name__}", TypeError)
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


def reused_teacher_logits(projected_features: Tensor, teacher_classifier: nn.Module) -> Tensor:
    r"""ŷ = classifier(GAP(P(f_s))) for (B, C, H, W) features, classifier(P(f_s)) for (B, D) (Chen et al. 2022).

    The student's prediction through the teacher's classifier, which must be frozen (:func:`freeze_`): a classifier
    with a parameter that requires grad is rejected, so it can receive no gradient and no optimiser update. The
    gradient still flows through it to the projected features (and so to the projector and the student).

    Shape:
        projected_features: (B, D) or (B, C, H, W); output: the classifier's output for (B, C) inputs.
    """
    fn = "reused_teacher_logits"
    x = check_logits(fn, "projected_features", projected_features)
    if x.dim() not in (2, 4):
        fail(fn, f"`projected_features` must be (B, D) or (B, C, H, W), got shape {tuple(x.shape)}")
    if not isinstance(teacher_classifier, nn.Module):
        fail(fn, f"`teacher_classifier` must be a torch.nn.Module, got {type(teacher_classifier).__name__}", TypeError)
    if any(p.requires_grad for p in teacher_classifier.parameters()):
        fail(fn, "`teacher_classifier` has parameters that require grad; freeze it first with kdref.freeze_(module)")
    # The pooling a teacher network's own head applies (global adaptive average pooling), so S1 holds bit for bit.
    pooled = x if x.dim() == 2 else F.adaptive_avg_pool2d(x, 1).flatten(1)
    return teacher_classifier(pooled)


class SimKDOutput(NamedTuple):
    """What :class:`SimKDStudent` returns: the projected features, the aligned teacher features, the logits."""

    projected: Tensor
    teacher_features: Tensor | None
    logits: Tensor


class SimKDStudent(nn.Module):
    r"""Student trunk + :class:`SimKDProjector` + the frozen teacher classifier (Chen et al. 2022).

    ``forward(x, teacher_features=None)`` runs the trunk to its last (B, C_s, H, W) feature map, aligns it with the
    teacher's map when given (:func:`align_spatial`; otherwise pools it to ``feature_size`` when set), projects
    it and predicts through the teacher head. Train with ``simkd_loss(out.projected, out.teacher_features)``; predict
    with ``out.logits``. The teacher head is frozen at construction (:func:`freeze_`) and stays in eval mode.
    """

    def __init__(
        self,
        trunk: nn.Module,
        projector: nn.Module,
        teacher_classifier: nn.Module,
        *,
        feature_size: tuple[int, int] | None = None,
    ):
        super().__init__()
        for name, m in (("trunk", trunk), ("projector", projector), ("teacher_classifier", teacher_classifier)):
            if not isinstance(m, nn.Module):
                fail("SimKDStudent", f"`{name}` must be a torch.nn.Module, got {type(m).__name__}", TypeError)
        self.trunk, self.projector = trunk, projector
        self.teacher_classifier = freeze_(teacher_classifier)
        self.feature_size = None if feature_size is None else (int(feature_size[0]), int(feature_size[1]))

    def train(self, mode: bool = True) -> SimKDStudent:
        super().train(mode)
        self.teacher_classifier.eval()
        return self

    def forward(self, x: Tensor, teacher_features: Tensor | None = None) -> SimKDOutput:
        f_s = self.trunk(x)
        if teacher_features is not None:
            f_s, teacher_features = align_spatial(f_s, teacher_features)
        elif self.feature_size is not None and tuple(f_s.shape[2:]) != self.feature_size:
            f_s = F.adaptive_avg_pool2d(f_s, self.feature_size)
        projected = self.projector(f_s)
        return SimKDOutput(projected, teacher_features, reused_teacher_logits(projected, self.teacher_classifier))
