"""Every kdref method by name, with its official defaults from :mod:`kdref.presets`, as the harness trains it.

A :class:`Method` says how to build the student around a base model (two heads for DeiT, projector + frozen teacher
head for SimKD), what the teacher must provide (logits or features, on which view), its recipe (augmentation
strength, mixup, schedule length) and how to compute the loss of one batch and the student's predictions.

Names: ``none`` (labels only), ``hinton``, ``dkd`` (with its linear warm-up), ``dist``, ``deit`` (class and
distillation heads; ``distillation`` "hard" or "soft"), ``deit-hard`` / ``deit-soft`` (one head, Eq. 3 / Eq. 2),
``funmatch`` (teacher on the same augmented and mixed batch; ``teacher_mode`` "consistent", "fixed" — targets
precomputed on un-augmented data — or "independent" views), ``vanillakd`` (KD at T = 1 with strong augmentation,
mixup and a long schedule), ``simkd`` (projector + reused frozen teacher classifier) and ``simkd-control`` (the same
trunk + projector with a trainable head, trained by KD: the control that separates the method from the parameters).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdref import presets
from kdref.losses import deit as _deit
from kdref.losses import distributed as _distributed
from kdref.losses import simkd as _simkd

from .models import TwoHead, pooled

__all__ = ["METHODS", "Batch", "Method", "get_method"]


@dataclass
class Batch:
    """One training batch as a method sees it.

    ``x``: the student's input (augmented, mixed); ``y``: integer labels; ``mix``: (a, y_rolled) when mixup was
    applied (the label target is a·e_y + (1 − a)·e_{y_rolled}), else None; ``teacher``: the teacher's logits or
    features for this batch (None for ``none``); ``epoch``: 1-based.
    """

    x: Tensor
    y: Tensor
    mix: tuple[float, Tensor] | None
    teacher: Tensor | None
    epoch: int


def label_ce(logits: Tensor, batch: Batch) -> Tensor:
    """Cross-entropy on the labels, against the mixed one-hot target when the batch was mixed."""
    logits = logits.float()
    if batch.mix is None:
        return F.cross_entropy(logits, batch.y)
    a, y2 = batch.mix
    return a * F.cross_entropy(logits, batch.y) + (1.0 - a) * F.cross_entropy(logits, y2)


@dataclass
class Method:
    """A method's name, recipe and the preset it takes its loss and defaults from."""

    name: str
    preset: presets.Preset | None
    #: What the teacher gives each batch: "logits" | "features" | None (no teacher).
    teacher_output: str | None = "logits"
    #: "consistent" (same view), "fixed" (precomputed on un-augmented data), "independent" (own view).
    teacher_mode: str = "consistent"
    #: Recipe defaults, used where the run does not set them: augment strength, mixup, schedule multiplier.
    recipe: Mapping[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    # -- the student -------------------------------------------------------------------------------------------
    def build_student(self, base: Any, teacher: Any, num_classes: int) -> nn.Module:
        if self.name == "deit":
            return TwoHead(base, num_classes)
        if self.name in ("simkd", "simkd-control"):
            assert teacher is not None
            projector = _simkd.SimKDProjector(base.feature_dim, teacher.feature_dim, factor=self.options["factor"])
            if self.name == "simkd":
                return _simkd.SimKDStudent(_MapTrunk(base), projector, copy.deepcopy(teacher.classifier))
            return _ProjectedStudent(_MapTrunk(base), projector, nn.Linear(teacher.feature_dim, num_classes))
        return base

    def predict(self, student: nn.Module, x: Tensor) -> Tensor:
        """Class scores for accuracy: logits, or DeiT's fused two-head scores, or SimKD's reused-head logits."""
        out = student(x)
        if self.name == "deit":
            return _deit.deit_fusion_scores(out[0], out[1], fusion=self.options.get("fusion", "logit_mean"))
        if self.name == "simkd":
            return out.logits
        return out

    # -- the loss ----------------------------------------------------------------------------------------------
    def _with_preset(self, p: presets.Preset, args: tuple, logits: Tensor, batch: Batch) -> Tensor:
        if batch.mix is None:
            return p.total_loss(*args, student_logits=logits, target=batch.y, epoch=batch.epoch)
        kd = p.kd_factor(batch.epoch) * p.kd_weight * p.loss_fn("torch")(*args, **p.keywords)
        return kd + p.ce_weight * label_ce(logits, batch) if p.ce_weight else kd

    def loss(self, student: nn.Module, batch: Batch) -> Tensor:
        name, p, t = self.name, self.preset, batch.teacher
        if name == "none":
            return label_ce(student(batch.x), batch)
        assert p is not None and t is not None
        if name == "deit":
            cls, dist = student(batch.x)
            kw = dict(p.keywords)
            return _deit.deit_loss(cls, dist, t, batch.y, distillation=self.options["distillation"], **kw)
        if name == "simkd":
            out = student(batch.x, _as_map(t))
            return self._with_preset(p, (out.projected, out.teacher_features), out.logits, batch)
        s = student(batch.x)
        if name == "dist" and self.options.get("intra") == "global":
            kd = _distributed.dist_loss(s, t, **p.keywords)
            return kd * p.kd_weight + p.ce_weight * label_ce(s, batch)
        args = (s, t, batch.y) if p.loss_takes_target else (s, t)
        return self._with_preset(p, args, s, batch)


class _MapTrunk(nn.Module):
    """A base model's ``feature_map`` as a (B, C, H, W) map ((B, D) features become (B, D, 1, 1))."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base: Any = base

    def forward(self, x: Tensor) -> Tensor:
        return _as_map(self.base.feature_map(x))


class _ProjectedStudent(nn.Module):
    """trunk → projector → GAP → trainable linear head: SimKD's architecture without the reused teacher head."""

    def __init__(self, trunk: nn.Module, projector: nn.Module, head: nn.Module):
        super().__init__()
        self.trunk, self.projector, self.head = trunk, projector, head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(pooled(self.projector(self.trunk(x))))


def _as_map(f: Tensor) -> Tensor:
    return f[:, :, None, None] if f.dim() == 2 else f


def _replace_keywords(p: presets.Preset, **kw: Any) -> presets.Preset:
    kw = {k: v for k, v in kw.items() if v is not None}
    return dataclasses.replace(p, keywords={**p.keywords, **kw}) if kw else p


def get_method(
    name: str,
    *,
    temperature: float | None = None,
    beta: float | None = None,
    warmup_epochs: int | None = None,
    distillation: str = "hard",
    teacher_mode: str | None = None,
    dist_intra: str = "global",
    simkd_factor: int = 2,
) -> Method:
    """The method ``name`` with its preset's official defaults; keyword overrides for the temperature (T, τ or t
    of each loss), DKD's β and warm-up length, DeiT's distillation kind, function matching's teacher mode,
    DIST's intra term under DDP ("global": over the global batch, "local": per process) and SimKD's projector
    bottleneck factor. ``warmup_epochs=0`` turns DKD's warm-up off."""
    if name not in METHODS:
        raise ValueError(f"get_method: unknown method {name!r}; known: {', '.join(METHODS)}")
    if name == "none":
        return Method("none", None, teacher_output=None)
    if name == "hinton":
        return Method(name, _replace_keywords(presets.preset("hinton"), temperature=temperature))
    if name == "dkd":
        p = _replace_keywords(presets.preset("dkd"), temperature=temperature, beta=beta)
        if warmup_epochs is not None:
            p = dataclasses.replace(p, warmup_epochs=warmup_epochs or None)
        return Method(name, p)
    if name == "dist":
        if dist_intra not in ("global", "local"):
            raise ValueError(f"get_method: `dist_intra` must be 'global' or 'local', got {dist_intra!r}")
        return Method(name, _replace_keywords(presets.preset("dist"), tau=temperature), options={"intra": dist_intra})
    if name == "deit":
        if distillation not in ("hard", "soft"):
            raise ValueError(f"get_method: `distillation` must be 'hard' or 'soft', got {distillation!r}")
        # deit_loss's α weights the distillation head: official hard recipe α = 0.5, τ = 1; soft: the paper's
        # λ = 0.1, τ = 3 (the deit-soft preset).
        kw = {"alpha": 0.5, "tau": 1.0} if distillation == "hard" else dict(presets.preset("deit-soft").keywords)
        if temperature is not None and distillation == "soft":
            kw["tau"] = temperature
        p = dataclasses.replace(presets.preset("deit-hard"), name="deit", keywords=kw)
        return Method(name, p, options={"distillation": distillation})
    if name in ("deit-hard", "deit-soft"):
        tau = temperature if name == "deit-soft" else None
        return Method(name, _replace_keywords(presets.preset(name), tau=tau))
    if name == "funmatch":
        mode = teacher_mode or "consistent"
        if mode not in ("consistent", "fixed", "independent"):
            raise ValueError(f"get_method: `teacher_mode` must be consistent, fixed or independent, got {mode!r}")
        p = _replace_keywords(presets.preset("funmatch"), temperature=temperature)
        # Function matching = consistent views + mixup; the fixed teacher has precomputed clean targets (no mixup).
        return Method(name, p, teacher_mode=mode, recipe={"augment": "basic", "mixup": mode != "fixed"})
    if name == "vanillakd":
        p = _replace_keywords(presets.preset("vanillakd"), temperature=temperature)
        return Method(name, p, recipe={"augment": "strong", "mixup": True, "epochs_factor": 3})
    if name == "simkd":
        return Method(name, presets.preset("simkd"), teacher_output="features", options={"factor": simkd_factor})
    # simkd-control
    p = _replace_keywords(presets.preset("hinton"), temperature=temperature)
    return Method(name, p, options={"factor": simkd_factor})


METHODS = (
    "none",
    "hinton",
    "dkd",
    "dist",
    "deit",
    "deit-hard",
    "deit-soft",
    "funmatch",
    "vanillakd",
    "simkd",
    "simkd-control",
)


@torch.no_grad()
def teacher_output(method: Method, teacher: Any, x: Tensor) -> Tensor:
    """The teacher's logits, or its last features for SimKD, for inputs ``x`` (no gradient)."""
    return teacher.feature_map(x) if method.teacher_output == "features" else teacher(x)
