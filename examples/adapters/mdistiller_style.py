"""Adapter: functions with a positional temperature that only return the batch mean."""

import torch

from examples.third_party import common_kd as theirs


def _per_sample(loss_of_batch, reduction, *arrays):
    lead = arrays[0].shape[:-1]  # (..., C) logits and (...) targets: flatten to rows, one call per row
    rows = [a.reshape(-1, *a.shape[len(lead) :]) for a in arrays]
    values = torch.stack([loss_of_batch(*(r[i : i + 1] for r in rows)) for i in range(rows[0].shape[0])])
    return values.mean() if reduction == "mean" else values.sum() if reduction == "sum" else values.reshape(lead)


def kd_loss(student_logits, teacher_logits, *, temperature=4.0, reduction="mean"):
    return _per_sample(lambda s, t: theirs.kd_loss(s, t, temperature), reduction, student_logits, teacher_logits)


def dkd_loss(student_logits, teacher_logits, target, *, alpha=1.0, beta=8.0, temperature=4.0, reduction="mean"):
    return _per_sample(
        lambda s, t, y: theirs.dkd_loss(s, t, y, alpha, beta, temperature),
        reduction,
        student_logits,
        teacher_logits,
        target,
    )
