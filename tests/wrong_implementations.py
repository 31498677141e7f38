"""A catalogue of deliberately wrong implementations, written the ways people commonly get these losses wrong.

Each is a plain function with the contract's signature, as a user's adapter would expose it. The self-test checks
that the conformance suite flags every one and names the right diagnosis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdref import losses as L

from .official import mdistiller_nckd, mdistiller_tckd


def _reduce(rows: torch.Tensor, reduction: str) -> torch.Tensor:
    return rows.mean() if reduction == "mean" else rows.sum() if reduction == "sum" else rows


def kd_without_t2(s, t, *, temperature=4.0, reduction="mean"):
    return L.kd_loss(s, t, temperature=temperature, reduction=reduction) / temperature**2


def kd_kl_div_mean(s, t, *, temperature=4.0, reduction="mean"):
    """F.kl_div(..., reduction='mean') divides by N·C."""
    kl = F.kl_div(F.log_softmax(s / temperature, -1), F.softmax(t.detach() / temperature, -1), reduction="none")
    return _reduce(kl.mean(-1), reduction) * temperature**2


def kd_reversed(s, t, *, temperature=4.0, reduction="mean"):
    log_q, log_p = F.log_softmax(s / temperature, -1), F.log_softmax(t.detach() / temperature, -1)
    return _reduce(temperature**2 * (log_q.exp() * (log_q - log_p)).sum(-1), reduction)


def kd_swapped_arguments(s, t, *, temperature=4.0, reduction="mean"):
    """The student and teacher passed the wrong way round to a correct KD."""
    log_q, log_p = F.log_softmax(t / temperature, -1), F.log_softmax(s / temperature, -1)
    return _reduce(temperature**2 * (log_p.exp() * (log_p - log_q)).sum(-1), reduction)


def kd_soft_cross_entropy(s, t, *, temperature=4.0, reduction="mean"):
    """Soft CE with T² in place of KL: the teacher's entropy is included."""
    return L.soft_cross_entropy(s, t, temperature=temperature, reduction=reduction) * temperature**2


def kd_log_of_softmax(s, t, *, temperature=4.0, reduction="mean"):
    p, q = torch.softmax(t.float() / temperature, -1), torch.softmax(s.float() / temperature, -1)
    return _reduce(temperature**2 * (p * (torch.log(p) - torch.log(q))).sum(-1), reduction)


def kd_leaks_into_teacher(s, t, *, temperature=4.0, reduction="mean"):
    log_q, log_p = F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1)
    return _reduce(temperature**2 * (log_p.exp() * (log_p - log_q)).sum(-1), reduction)


def kd_sums_for_mean(s, t, *, temperature=4.0, reduction="mean"):
    return L.kd_loss(s, t, temperature=temperature, reduction="sum" if reduction == "mean" else reduction)


def soft_ce_is_kl(s, t, *, temperature=4.0, reduction="mean"):
    return L.kd_loss(s, t, temperature=temperature, reduction=reduction) / temperature**2


def hinton_lambda_on_soft(s, t, y, *, temperature=4.0, lam=0.1, reduction="mean"):
    """DeiT's convention applied to Hinton: λ weights the distillation term."""
    hard = F.cross_entropy(s.reshape(-1, s.shape[-1]), y.reshape(-1), reduction="none").reshape(y.shape)
    soft = L.soft_cross_entropy(s, t, temperature=temperature, reduction="none")
    return _reduce((1 - lam) * hard + lam * temperature**2 * soft, reduction)


def nckd_with_mask(s, t, y, *, temperature=4.0, reduction="mean"):
    """mdistiller's −1000 mask, sample by sample, without its T²."""
    C = s.shape[-1]
    s2, t2, y2 = s.reshape(-1, C).double(), t.reshape(-1, C).double(), y.reshape(-1)
    rows = [mdistiller_nckd(s2[i : i + 1], t2[i : i + 1], y2[i : i + 1], temperature) for i in range(s2.shape[0])]
    return _reduce(torch.stack(rows).reshape(s.shape[:-1]) / temperature**2, reduction)


def nckd_includes_target(s, t, y, *, temperature=4.0, reduction="mean"):
    """The non-target softmax taken over all classes (the 'j ≠ i' slip has the same effect)."""
    return L.kd_loss(s, t, temperature=temperature, reduction=reduction) / temperature**2


def tckd_log_of_softmax(s, t, y, *, temperature=4.0, reduction="mean"):
    ps, pt = torch.softmax(s.float() / temperature, -1), torch.softmax(t.float() / temperature, -1)
    ps_t, pt_t = ps.gather(-1, y[..., None])[..., 0], pt.gather(-1, y[..., None])[..., 0]
    bs, bt = torch.stack([ps_t, 1 - ps_t], -1), torch.stack([pt_t, 1 - pt_t], -1)
    return _reduce((bt * (torch.log(bt) - torch.log(bs))).sum(-1), reduction)


def tckd_with_t2(s, t, y, *, temperature=4.0, reduction="mean"):
    """mdistiller's TCKD keeps its T² (float64 to stay clear of its overflow)."""
    C = s.shape[-1]
    s2, t2, y2 = s.reshape(-1, C).double(), t.reshape(-1, C).double(), y.reshape(-1)
    rows = [mdistiller_tckd(s2[i : i + 1], t2[i : i + 1], y2[i : i + 1], temperature) for i in range(s2.shape[0])]
    return _reduce(
        torch.stack(rows).reshape(s.shape[:-1]).to(s.dtype if s.dtype == torch.float64 else torch.float32), reduction
    )


def dkd_weighted_nckd(s, t, y, *, alpha=1.0, beta=8.0, temperature=4.0, reduction="mean"):
    """NCKD weighted per sample by (1 − p_t), as in KD's decomposition: not DKD."""
    p_t = (
        torch.softmax(t.double() / temperature, -1)
        .gather(-1, y[..., None])[..., 0]
        .to(torch.float32 if s.dtype != torch.float64 else s.dtype)
    )
    tc = L.tckd(s, t, y, temperature=temperature, reduction="none")
    nc = L.nckd(s, t, y, temperature=temperature, reduction="none")
    return _reduce(temperature**2 * (alpha * tc + beta * (1 - p_t) * nc), reduction)


def dkd_without_t2(s, t, y, *, alpha=1.0, beta=8.0, temperature=4.0, reduction="mean"):
    return L.dkd_loss(s, t, y, alpha=alpha, beta=beta, temperature=temperature, reduction=reduction) / temperature**2


def dist_uncentred(s, t, *, beta=2.0, gamma=2.0, tau=1.0, eps_mode="exact", eps=1e-8):
    """Cosine similarity of raw probability vectors in place of Pearson."""
    ys, yt = torch.softmax(s / tau, -1), torch.softmax(t.detach() / tau, -1)
    inter = 1 - F.cosine_similarity(ys, yt, dim=1).mean()
    intra = 1 - F.cosine_similarity(ys.T, yt.T, dim=1).mean()
    return tau**2 * (beta * inter + gamma * intra)


def dist_official_eps(s, t, *, beta=2.0, gamma=2.0, tau=1.0, eps_mode="exact", eps=1e-8):
    """The official DIST code: ε = 1e-8 added to the product of norms, whatever mode is asked for."""
    ys, yt = torch.softmax(s / tau, -1), torch.softmax(t.detach() / tau, -1)

    def pearson_rows(a, b):
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)

    return tau**2 * (beta * (1 - pearson_rows(ys, yt).mean()) + gamma * (1 - pearson_rows(ys.T, yt.T).mean()))


def dist_without_tau2(s, t, *, beta=2.0, gamma=2.0, tau=1.0, eps_mode="exact", eps=1e-8):
    """The paper's appendix pseudo-code: no τ²."""
    return L.dist_loss(s, t, beta=beta, gamma=gamma, tau=tau, eps_mode=eps_mode, eps=eps) / tau**2


def deit_soft_numel(s, t, y, *, alpha=0.1, tau=3.0, kl_normalization="batch"):
    """DeiT's official code divides the KL by N·C whatever is asked for."""
    return L.deit_soft_loss(s, t, y, alpha=alpha, tau=tau, kl_normalization="numel")


def funmatch_without_t2(s, t, *, temperature=1.0):
    return L.funmatch_loss(s, t, temperature=temperature) / temperature**2


def simkd_sum_of_squares(p, f):
    """The paper's ‖f_t − P(f_s)‖² as a sum, not the official mean."""
    return ((p - f.detach()) ** 2).sum()
