"""Re-implementations of the official formulas (mdistiller's KD and DKD), written from their description.

They are the "common formulation" kdref is measured against: softmax then log, a −1000 mask on the target
logit, batch averaging without DKD's per-sample weight. Used only by the tests and the benchmarks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mdistiller_kd(s: torch.Tensor, t: torch.Tensor, T: float) -> torch.Tensor:
    """T²·batch-mean KL(σ(t/T) ‖ σ(s/T)) via log_softmax (mdistiller's kd_loss)."""
    log_q = F.log_softmax(s / T, dim=1)
    p = F.softmax(t / T, dim=1)
    return F.kl_div(log_q, p, reduction="none").sum(1).mean() * T * T


def _masks(s: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    gt = torch.zeros_like(s).scatter_(1, y.unsqueeze(1), 1.0)
    return gt, 1.0 - gt


def mdistiller_tckd(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float) -> torch.Tensor:
    """T²·Σ_b KL(b_t ‖ b_s)/B with b = [Σ p·gt, Σ p·other] and a plain log of b_s (mdistiller's TCKD)."""
    gt, other = _masks(s, y)
    ps, pt = F.softmax(s / T, dim=1), F.softmax(t / T, dim=1)
    bs = torch.stack([(ps * gt).sum(1), (ps * other).sum(1)], 1)
    bt = torch.stack([(pt * gt).sum(1), (pt * other).sum(1)], 1)
    return F.kl_div(torch.log(bs), bt, reduction="sum") * T * T / s.shape[0]


def mdistiller_nckd(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float) -> torch.Tensor:
    """T²·Σ_b KL(σ(t/T − 1000·gt) ‖ σ(s/T − 1000·gt))/B (mdistiller's NCKD with the −1000 mask)."""
    gt, _ = _masks(s, y)
    log_qs = F.log_softmax(s / T - 1000.0 * gt, dim=1)
    pt = F.softmax(t / T - 1000.0 * gt, dim=1)
    return F.kl_div(log_qs, pt, reduction="sum") * T * T / s.shape[0]


def mdistiller_dkd(
    s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, alpha: float, beta: float, T: float
) -> torch.Tensor:
    """α·TCKD + β·NCKD as mdistiller computes them (both with T², batch-averaged)."""
    return alpha * mdistiller_tckd(s, t, y, T) + beta * mdistiller_nckd(s, t, y, T)
