"""The common formulations kdref's losses are timed against, written from their public descriptions.

- KD: ``F.kl_div(log_softmax(s/T), log_softmax(t/T), log_target=True)`` (batchmean, × T²), and mdistiller's KD.
- DKD: mdistiller's ``dkd_loss`` (softmax, ``cat_mask``, ``torch.log`` of b, the −1000 target mask), copied from
  ``tests/official.py`` (kept in sync by hand; tests/official.py is the tested copy).
- DIST: the official DIST code (softmax, Pearson as the cosine of the row/column-centred vectors, ε = 1e-8 added to
  the product of the norms).
- Hinton: 0.1·CE + 0.9·T²·kl_div(log_softmax(s/T), softmax(t/T)); DeiT soft: (1−α)·CE + α·τ²·kl_div batchmean;
  function matching: kl_div at T = 1.

Half-precision inputs are cast to float32 first (what careful code does, and what kdref does), so every contender
computes in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _f32(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def kl_div_kd(s: Tensor, t: Tensor, T: float = 4.0) -> Tensor:
    s, t = _f32(s), _f32(t)
    return F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="batchmean", log_target=True) * T * T


def mdistiller_kd(s: Tensor, t: Tensor, T: float = 4.0) -> Tensor:
    s, t = _f32(s), _f32(t)
    log_q = F.log_softmax(s / T, dim=1)
    p = F.softmax(t / T, dim=1)
    return F.kl_div(log_q, p, reduction="none").sum(1).mean() * T * T


def _masks(s: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    gt = torch.zeros_like(s).scatter_(1, y.unsqueeze(1), 1.0)
    return gt, 1.0 - gt


def mdistiller_tckd(s: Tensor, t: Tensor, y: Tensor, T: float = 4.0) -> Tensor:
    s, t = _f32(s), _f32(t)
    gt, other = _masks(s, y)
    ps, pt = F.softmax(s / T, dim=1), F.softmax(t / T, dim=1)
    bs = torch.stack([(ps * gt).sum(1), (ps * other).sum(1)], 1)
    bt = torch.stack([(pt * gt).sum(1), (pt * other).sum(1)], 1)
    return F.kl_div(torch.log(bs), bt, reduction="sum") * T * T / s.shape[0]


def mdistiller_nckd(s: Tensor, t: Tensor, y: Tensor, T: float = 4.0) -> Tensor:
    s, t = _f32(s), _f32(t)
    gt, _ = _masks(s, y)
    log_qs = F.log_softmax(s / T - 1000.0 * gt, dim=1)
    pt = F.softmax(t / T - 1000.0 * gt, dim=1)
    return F.kl_div(log_qs, pt, reduction="sum") * T * T / s.shape[0]


def mdistiller_dkd(s: Tensor, t: Tensor, y: Tensor, alpha: float = 1.0, beta: float = 8.0, T: float = 4.0) -> Tensor:
    """mdistiller's dkd_loss as written: softmax twice per side, cat_mask, log of b, the −1000 mask."""
    s, t = _f32(s), _f32(t)
    gt, other = _masks(s, y)
    ps, pt = F.softmax(s / T, dim=1), F.softmax(t / T, dim=1)
    bs = torch.cat([(ps * gt).sum(1, keepdim=True), (ps * other).sum(1, keepdim=True)], 1)
    bt = torch.cat([(pt * gt).sum(1, keepdim=True), (pt * other).sum(1, keepdim=True)], 1)
    tckd = F.kl_div(torch.log(bs), bt, reduction="sum") * T * T / s.shape[0]
    log_qs = F.log_softmax(s / T - 1000.0 * gt, dim=1)
    pt2 = F.softmax(t / T - 1000.0 * gt, dim=1)
    nckd = F.kl_div(log_qs, pt2, reduction="sum") * T * T / s.shape[0]
    return alpha * tckd + beta * nckd


def _cosine(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def _pearson(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    return _cosine(a - a.mean(1).unsqueeze(1), b - b.mean(1).unsqueeze(1), eps)


def official_dist(s: Tensor, t: Tensor, beta: float = 2.0, gamma: float = 2.0, tau: float = 1.0) -> Tensor:
    """The official DIST loss: 1 − mean Pearson over rows and over columns of softmax(z/τ), times τ²."""
    s, t = _f32(s), _f32(t)
    ys, yt = (s / tau).softmax(dim=1), (t / tau).softmax(dim=1)
    inter = 1 - _pearson(ys, yt).mean()
    intra = 1 - _pearson(ys.transpose(0, 1), yt.transpose(0, 1)).mean()
    return tau**2 * (beta * inter + gamma * intra)


def common_hinton(s: Tensor, t: Tensor, y: Tensor, T: float = 4.0, lam: float = 0.1) -> Tensor:
    s, t = _f32(s), _f32(t)
    soft = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean") * T * T
    return lam * F.cross_entropy(s, y) + (1.0 - lam) * soft


def common_deit_soft(s: Tensor, t: Tensor, y: Tensor, alpha: float = 0.5, tau: float = 1.0) -> Tensor:
    s, t = _f32(s), _f32(t)
    kl = F.kl_div(F.log_softmax(s / tau, -1), F.log_softmax(t / tau, -1), reduction="batchmean", log_target=True)
    return (1.0 - alpha) * F.cross_entropy(s, y) + alpha * tau * tau * kl


def common_funmatch(s: Tensor, t: Tensor) -> Tensor:
    s, t = _f32(s), _f32(t)
    return F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), reduction="batchmean", log_target=True)
