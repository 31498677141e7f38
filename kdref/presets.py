"""Published training recipes as data: which kdref loss, its keywords and the CE / distillation weights.

A training harness builds the total loss ``ce_weight·CE(student_logits, y) + kd_factor(epoch)·kd_weight·loss(...)``
from a :class:`Preset` (or calls :meth:`Preset.total_loss`). The loss is named by its kdref contract name and
resolved lazily, so importing this module imports neither torch nor the loss modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._checks import fail

__all__ = ["PRESETS", "Preset", "preset"]

_TIERS = {"torch": "kdref.losses", "reference": "kdref.reference"}


@dataclass(frozen=True)
class Preset:
    """One recipe: ``ce_weight·CE + kd_weight·loss(*loss_args, **keywords)``, the KD term warmed up if asked."""

    name: str
    #: A kdref contract function name, e.g. "kd_loss"; resolved by :meth:`loss_fn`.
    loss: str
    keywords: Mapping[str, Any]
    #: Weight of the ground-truth cross-entropy on the student logits (0: no CE term).
    ce_weight: float
    #: Weight of the distillation loss.
    kd_weight: float
    #: Linear warm-up of the distillation term over this many (1-based) epochs, None for none (DKD: 20).
    warmup_epochs: int | None = None
    notes: str = ""
    source: str = ""
    #: Whether the loss itself takes the integer targets after the student and teacher arrays.
    loss_takes_target: bool = field(default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keywords", MappingProxyType(dict(self.keywords)))

    def loss_fn(self, tier: str = "torch") -> Callable[..., Any]:
        """The loss function from ``kdref.losses`` ("torch") or ``kdref.reference`` ("reference")."""
        if tier not in _TIERS:
            fail(f"Preset({self.name!r}).loss_fn", f"`tier` must be one of {tuple(_TIERS)}, got {tier!r}")
        return getattr(importlib.import_module(_TIERS[tier]), self.loss)

    def kd_factor(self, epoch: int | None = None) -> float:
        """min(epoch / warmup_epochs, 1) for a warmed-up preset (1-based epochs); 1 otherwise or when epoch is None."""
        if self.warmup_epochs is None or epoch is None:
            return 1.0
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            fail(f"Preset({self.name!r}).kd_factor", f"`epoch` must be an integer >= 1 (1-based), got {epoch!r}")
        return min(epoch / self.warmup_epochs, 1.0)

    def total_loss(
        self, *loss_args: Any, student_logits: Any = None, target: Any = None, epoch: int | None = None
    ) -> Any:
        """ce_weight·CE(student_logits, target) + kd_factor(epoch)·kd_weight·loss(*loss_args, **keywords), in torch.

        ``loss_args`` are the loss's positional arrays in contract order (student logits, teacher logits[, target],
        or for "simkd" the projected and teacher features). ``student_logits`` defaults to ``loss_args[0]``; the CE
        term (mean over samples, integer targets) is computed only when ``ce_weight`` ≠ 0.
        """
        fn = f"Preset({self.name!r}).total_loss"
        total = self.kd_factor(epoch) * self.kd_weight * self.loss_fn("torch")(*loss_args, **self.keywords)
        if self.ce_weight != 0.0:
            import torch.nn.functional as F

            logits = loss_args[0] if student_logits is None else student_logits
            if target is None:
                fail(fn, f"`target` is required: this preset weights cross-entropy by {self.ce_weight}")
            total = total + self.ce_weight * F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        return total


def _presets(*items: Preset) -> Mapping[str, Preset]:
    return MappingProxyType({p.name: p for p in items})


PRESETS: Mapping[str, Preset] = _presets(
    Preset(
        "hinton",
        "kd_loss",
        {"temperature": 4.0, "reduction": "mean"},
        ce_weight=0.1,
        kd_weight=0.9,
        notes="CIFAR-100 KD baseline; mdistiller's ImageNet configs use T = 1 with CE 0.5 / KD 0.5.",
        source="Hinton et al. 2015; mdistiller cfg.py (KD.TEMPERATURE 4, CE_WEIGHT 0.1, KD_WEIGHT 0.9)",
    ),
    Preset(
        "dkd",
        "dkd_loss",
        {"alpha": 1.0, "beta": 8.0, "temperature": 4.0, "reduction": "mean"},
        ce_weight=1.0,
        kd_weight=1.0,
        warmup_epochs=20,
        notes="CIFAR-100 default (res32x4 pairs); β is 2 or 6 for other CIFAR pairs, ImageNet uses T = 1 with "
        "β 0.5 (R34→R18) or 2 (R50→MV1). The warm-up multiplies the DKD term only, per 1-based epoch.",
        source="Zhao et al. 2022; mdistiller cfg.py and configs/cifar100/dkd",
        loss_takes_target=True,
    ),
    Preset(
        "dist",
        "dist_loss",
        {"beta": 2.0, "gamma": 2.0, "tau": 1.0},
        ce_weight=1.0,
        kd_weight=1.0,
        notes="ImageNet setting (config weight 2 on β = γ = 1); the CIFAR configs use τ = 4. The official code "
        "adds its ε to the product of the norms (eps_mode 'product_add'); the preset keeps kdref's default.",
        source="Huang et al. 2022; hunto/image_classification_sota configs/strategies/distill/resnet_dist.yaml",
    ),
    Preset(
        "deit-hard",
        "deit_hard_loss",
        {},
        ce_weight=0.0,
        kd_weight=1.0,
        notes="½·CE(s, y) + ½·CE(s, argmax t): the loss holds both halves, so no separate CE term. With a "
        "distillation token use deit_loss(distillation='hard', alpha=0.5) on the two heads.",
        source="Touvron et al. 2021, Eq. 3; deit README distilled recipe",
        loss_takes_target=True,
    ),
    Preset(
        "deit-soft",
        "deit_soft_loss",
        {"alpha": 0.1, "tau": 3.0},
        ce_weight=0.0,
        kd_weight=1.0,
        notes="(1 − λ)·CE + λ·τ²·KL with the paper's soft setting τ = 3, λ = 0.1 (not the code defaults "
        "α = 0.5, τ = 1); the loss holds the CE term.",
        source="Touvron et al. 2021, Eq. 2 and §5",
        loss_takes_target=True,
    ),
    Preset(
        "funmatch",
        "funmatch_loss",
        {"temperature": 1.0},
        ce_weight=0.0,
        kd_weight=1.0,
        notes="KL only, no label term. Consistent teaching: the teacher sees the same crop, mixed by "
        "mixup_batch with one a = max(b, 1 − b), b ~ Beta(1, 1) per batch; very long schedules (1200–9600 "
        "ImageNet epochs). Small datasets used t ∈ {1, 2, 5, 10}.",
        source="Beyer et al. 2022; big_vision configs/proj/distill/bit_i1k.py",
    ),
    Preset(
        "vanillakd",
        "kd_loss",
        {"temperature": 1.0, "reduction": "mean"},
        ce_weight=1.0,
        kd_weight=1.0,
        notes="Plain KD at T = 1 with both weights 1; the claim is about the recipe: strong augmentation "
        "(RandAugment, mixup/cutmix, the teacher on the same mixed batch), long schedules (300/600 epochs, A2/A1, "
        "LAMB), large data; the headline runs use timm's BCE as the ground-truth loss.",
        source="Hao et al. 2023; Hao840/vanillaKD train-kd.py defaults",
    ),
    Preset(
        "simkd",
        "simkd_loss",
        {},
        ce_weight=0.0,
        kd_weight=1.0,
        notes="Feature MSE only (scripts pass -c 0 -d 0 -b 1): loss args are (projector(f_s), f_t) after "
        "align_spatial; the student predicts with the frozen teacher classifier (reused_teacher_logits).",
        source="Chen et al. 2022; DefangChen/SimKD scripts/run_distill.sh",
    ),
)


def preset(name: str) -> Preset:
    """The preset called ``name``; ValueError listing the known names otherwise."""
    if not isinstance(name, str) or name not in PRESETS:
        fail("preset", f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
