"""Distillation losses written the ways circulating code writes them — stand-ins for "an implementation you did not
write", used by the conformance guide's worked adapters. Their signatures differ from kdref's contract on purpose.

Written for kdref from the published descriptions of the official code (not copied from it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# --- mdistiller style: positional temperature, batch mean only -------------------------------------------------
def kd_loss(logits_student, logits_teacher, temperature):
    log_pred_student = F.log_softmax(logits_student / temperature, dim=1)
    pred_teacher = F.softmax(logits_teacher / temperature, dim=1)
    return F.kl_div(log_pred_student, pred_teacher, reduction="none").sum(1).mean() * temperature**2


def dkd_loss(logits_student, logits_teacher, target, alpha, beta, temperature):
    gt = torch.zeros_like(logits_student).scatter_(1, target.unsqueeze(1), 1.0)
    other = 1.0 - gt
    ps, pt = F.softmax(logits_student / temperature, dim=1), F.softmax(logits_teacher / temperature, dim=1)
    bs = torch.stack([(ps * gt).sum(1), (ps * other).sum(1)], 1)
    bt = torch.stack([(pt * gt).sum(1), (pt * other).sum(1)], 1)
    tckd = F.kl_div(torch.log(bs), bt, reduction="sum") * temperature**2 / target.shape[0]
    pt2 = F.softmax(logits_teacher / temperature - 1000.0 * gt, dim=1)
    log_ps2 = F.log_softmax(logits_student / temperature - 1000.0 * gt, dim=1)
    nckd = F.kl_div(log_ps2, pt2, reduction="sum") * temperature**2 / target.shape[0]
    return alpha * tckd + beta * nckd


# --- torchdistill style: a module class holding the temperature, α weighting the hard loss ---------------------------
class KDLoss(nn.KLDivLoss):
    def __init__(self, temperature, alpha=None, beta=None, reduction="batchmean"):
        super().__init__(reduction=reduction)
        self.temperature, self.alpha = temperature, alpha
        self.beta = 1 - alpha if beta is None and alpha is not None else beta
        self.cross_entropy_loss = nn.CrossEntropyLoss(reduction="mean" if reduction == "batchmean" else reduction)

    def forward(self, student_output, teacher_output, targets=None):
        soft = super().forward(
            torch.log_softmax(student_output / self.temperature, dim=1),
            torch.softmax(teacher_output / self.temperature, dim=1),
        )
        if self.alpha is None or self.alpha == 0 or targets is None:
            return soft  # no T² here: the torchdistill quirk
        hard = self.cross_entropy_loss(student_output, targets)
        return self.alpha * hard + self.beta * (self.temperature**2) * soft


# --- DeiT style: the model returns a tuple, the loss runs the teacher itself -------------------------------------
class DistillationLoss(nn.Module):
    def __init__(self, base_criterion, teacher_model, distillation_type, alpha, tau):
        super().__init__()
        self.base_criterion, self.teacher_model = base_criterion, teacher_model
        self.distillation_type, self.alpha, self.tau = distillation_type, alpha, tau

    def forward(self, inputs, outputs, labels):
        outputs, outputs_kd = outputs
        base_loss = self.base_criterion(outputs, labels)
        if self.distillation_type == "none":
            return base_loss
        with torch.no_grad():
            teacher_outputs = self.teacher_model(inputs)
        if self.distillation_type == "soft":
            T = self.tau
            distillation_loss = (
                F.kl_div(
                    F.log_softmax(outputs_kd / T, dim=1),
                    F.log_softmax(teacher_outputs / T, dim=1),
                    reduction="sum",
                    log_target=True,
                )
                * (T * T)
                / outputs_kd.numel()
            )
        else:
            distillation_loss = F.cross_entropy(outputs_kd, teacher_outputs.argmax(dim=1))
        return base_loss * (1 - self.alpha) + distillation_loss * self.alpha
