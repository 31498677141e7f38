"""Adapter: a loss that takes the model's output tuple and runs the teacher itself (DeiT's DistillationLoss)."""

import torch.nn.functional as F

from examples.third_party.common_kd import DistillationLoss


def deit_loss(
    cls_logits,
    dist_logits,
    teacher_logits,
    target,
    *,
    distillation="hard",
    alpha=0.5,
    tau=1.0,
    kl_normalization="batch",
):
    # The "teacher model" receives the teacher logits as its input and returns a copy, as a network run under
    # no_grad would: no gradient can reach the input.
    loss = DistillationLoss(F.cross_entropy, lambda logits: logits * 1.0, distillation, alpha, tau)
    C = cls_logits.shape[-1]  # (..., C) heads: every leading position is a sample
    rows = (cls_logits.reshape(-1, C), dist_logits.reshape(-1, C))
    return loss(teacher_logits.reshape(-1, C), rows, target.reshape(-1))
