"""Adapter: a loss module configured in its constructor, α weighting the hard term, batchmean only."""

from examples.adapters.mdistiller_style import _per_sample
from examples.third_party.common_kd import KDLoss


def hinton_loss(student_logits, teacher_logits, target, *, temperature=4.0, lam=0.1, reduction="mean"):
    loss = KDLoss(temperature, alpha=lam)  # its α weights the hard CE, like kdref's λ
    return _per_sample(loss, reduction, student_logits, teacher_logits, target)
