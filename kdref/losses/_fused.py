# mypy: disable-error-code="union-attr,arg-type,operator,unused-ignore"
"""Custom autograd Functions behind the Torch losses: one pass of statistics per row, the gradient saved, not the graph.

Each Function takes validated rows in the compute dtype (float32 or float64, tempered: ``x = s/T``, ``z = t/T``) and
returns per-row losses (KD, soft CE, DKD) or the scalar loss (DIST). The forward computes the loss and, only when the
student needs a gradient, the gradient of the loss with respect to ``x`` (the "gradient in the forward" design). The
single tensor saved for backward is that (M, C) gradient in the compute dtype; backward multiplies it by the incoming
gradient. What is saved, per Function:

=================  ===============================================  ==========================================
Function           saved for backward                               instead of (autograd through plain ops)
=================  ===============================================  ==========================================
``KDRows``         dℓ/dx, one (M, C) tensor                          log_softmax outputs, p, the products
``DKDRows``        dℓ/dx, one (M, C) tensor                          two LSEs, masked copies, log b, log p̂, p̂
``DISTLoss``       dL/dx, one (N, C) tensor                          softmaxes, centred rows and columns, norms
=================  ===============================================  ==========================================

The backward is a product with a constant, so a second derivative would be wrong: a backward with
``create_graph=True`` raises a RuntimeError saying so (rather than returning a gradient silently treated as a
constant). Use the plain-op path (``kdref.losses._fused.set_fused(False)``) for higher derivatives.

Numerics follow the reference implementations: every log-probability is a difference of log-sum-exps; DKD's
non-target log-partition is the exact LSE over the non-target entries (the target entry set to −∞, one LSE per
row), and the full LSE is ``logaddexp(LSE_{j≠t}, x_t)`` — never ``LSE + log1p(−p_t)``, which loses every digit as
p_t → 1; DIST centres by the computed row/column mean (not 1/C) and keeps the "exact" mode's rounding floor.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["DISTLoss", "DKDRows", "KDRows", "fused_enabled", "set_fused"]

DOUBLE_BACKWARD_MESSAGE = (
    "kdref's fused {name} saves its gradient in the forward and cannot be differentiated twice "
    "(backward with create_graph=True); call kdref.losses._fused.set_fused(False) to use the plain-op path, "
    "which supports higher derivatives"
)


def _once(name: str, grad: Tensor, g: Tensor) -> Tensor:
    if torch.is_grad_enabled():
        raise RuntimeError(DOUBLE_BACKWARD_MESSAGE.format(name=name))
    return grad * g


#: Zero variance in DIST's "exact" mode (kept equal to kdref.losses.dist.NOISE_ULPS).
NOISE_ULPS = 16.0

_FUSED = True


def set_fused(enabled: bool) -> bool:
    """Route the losses through the fused Functions (default) or the plain-op autograd path; returns the old state.

    The plain path is the reference the Functions are tested against, and it supports double backward.
    """
    global _FUSED
    old, _FUSED = _FUSED, bool(enabled)
    return old


def fused_enabled() -> bool:
    return _FUSED


# ---------------------------------------------------------------------------------------------------------- KD
def kd_rows_forward(x: Tensor, z: Tensor, coef: float, kl: bool, need_grad: bool) -> tuple[Tensor, Tensor | None]:
    """coef·KL(σ(z) ‖ σ(x)) (kl) or coef·(−Σ σ(z) log σ(x)) per row, and its gradient in x when asked."""
    log_q = torch.log_softmax(x, -1)
    log_p = torch.log_softmax(z, -1)
    p = log_p.exp()
    rows = (p * (log_p - log_q)).sum(-1) if kl else -(p * log_q).sum(-1)
    rows = coef * rows
    if not need_grad:
        return rows, None
    # d/dx of −Σ p log q is q·Σp − p (the KL's teacher-entropy term has no x in it).
    grad = log_q.exp_().mul_(p.sum(-1, keepdim=True)).sub_(p).mul_(coef)
    return rows, grad


class KDRows(torch.autograd.Function):
    """Per-row coef·KL(σ(z) ‖ σ(x)) (or the soft cross-entropy); saves only dℓ/dx."""

    @staticmethod
    def forward(ctx, x: Tensor, z: Tensor, coef: float, kl: bool) -> Tensor:  # type: ignore[override]
        rows, grad = kd_rows_forward(x, z, coef, kl, ctx.needs_input_grad[0])
        ctx.save_for_backward(grad)
        return rows

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return _once("KD loss", grad, g[:, None]), None, None, None


# --------------------------------------------------------------------------------------------------------- DKD
def _split(v: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(v with the target entry −∞, LSE over the non-targets, full LSE) of each row, one LSE pass per row."""
    vm = v.scatter(1, idx, float("-inf"))
    rest = torch.logsumexp(vm, -1)
    return vm, rest, torch.logaddexp(rest, v.gather(1, idx)[:, 0])


def dkd_rows_forward(
    x: Tensor, z: Tensor, y: Tensor, coef: float, alpha: float, beta: float, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """coef·(α·TCKD + β·NCKD) per row (a term with weight 0 is left out), and its gradient in x when asked."""
    idx = y[:, None]
    xm, rest_x, lse_x = _split(x, idx)
    zm, rest_z, lse_z = _split(z, idx)
    rows = None
    if alpha != 0.0:
        log_bs = torch.stack([x.gather(1, idx)[:, 0] - lse_x, rest_x - lse_x], -1)
        log_bt = torch.stack([z.gather(1, idx)[:, 0] - lse_z, rest_z - lse_z], -1)
        bt = log_bt.exp()
        rows = alpha * (bt * (log_bt - log_bs)).sum(-1)
    p_hat = None
    if beta != 0.0:
        p_hat = (zm - rest_z[:, None]).exp_()  # exactly 0 at the target
        nckd = (p_hat * ((z - rest_z[:, None]) - (x - rest_x[:, None]))).sum(-1)
        rows = beta * nckd if rows is None else rows + beta * nckd
    if rows is None:
        rows = torch.zeros_like(lse_x)
    rows = coef * rows
    if not need_grad:
        return rows, None
    q_hat = (xm - rest_x[:, None]).exp_()  # the student's non-target softmax, 0 at the target
    if beta != 0.0:
        grad = q_hat.sub(p_hat).mul_(coef * beta)
    else:
        grad = torch.zeros_like(x)
    if alpha != 0.0:
        d = log_bs.exp() - bt  # (b_s − b_t): target and non-target parts
        # ∂TCKD/∂x_j = q̂_j·(b_s,rest − b_t,rest) for j ≠ t and b_s,t − b_t,t at the target.
        grad.addcmul_(q_hat, (coef * alpha) * d[:, 1:2])
        grad.scatter_(1, idx, (coef * alpha) * d[:, 0:1])
    return rows, grad


class DKDRows(torch.autograd.Function):
    """Per-row coef·(α·TCKD + β·NCKD) with the exact non-target split; saves only dℓ/dx."""

    @staticmethod
    def forward(ctx, x: Tensor, z: Tensor, y: Tensor, coef: float, alpha: float, beta: float) -> Tensor:  # type: ignore[override]
        rows, grad = dkd_rows_forward(x, z, y, coef, alpha, beta, ctx.needs_input_grad[0])
        ctx.save_for_backward(grad)
        return rows

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return _once("DKD loss", grad, g[:, None]), None, None, None, None, None


# -------------------------------------------------------------------------------------------------------- DIST
def _rho(ys: Tensor, yt: Tensor, dim: int, need_grad: bool) -> tuple[Tensor, Tensor | None]:
    """Exact-mode Pearson ρ of probability vectors along ``dim`` and ∂ρ/∂ys (0 for zero-variance vectors).

    Centred by the computed mean; a vector whose centred entries all lie within NOISE_ULPS·eps·max(y) counts as
    zero variance (ρ = 0, no gradient), as in kdref.losses.dist's "exact" mode.
    """
    eps = torch.finfo(ys.dtype).eps
    one = None
    units = []
    for v in (ys, yt):
        c = v - v.mean(dim, keepdim=True)
        m = torch.linalg.vector_norm(c, float("inf"), dim, keepdim=True)
        z = m <= NOISE_ULPS * eps * v.amax(dim, keepdim=True)
        one = torch.ones_like(m) if one is None else one
        m = torch.where(z, one, m)
        c = c.div_(m)  # entries in [−1, 1]: the squared norm neither underflows nor overflows
        n = torch.where(z, one, torch.linalg.vector_norm(c, 2, dim, keepdim=True))
        units.append((c.div_(n), z, m * n))
    (ha, za, na), (hb, zb, _) = units
    zero = za | zb
    rho = torch.where(zero, torch.zeros_like(na), (ha * hb).sum(dim, keepdim=True))
    if not need_grad:
        return rho, None
    g = hb.sub_(ha.mul_(rho)).div_(na)
    g = g.sub_(g.mean(dim, keepdim=True)).masked_fill_(zero, 0.0)
    return rho, g


def dist_forward(
    x: Tensor, z: Tensor, coef: float, beta: float | None, gamma: float | None, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """coef·(β·(1 − mean ρ_rows) + γ·(1 − mean ρ_cols)) of softmax(x) and softmax(z); a None weight drops its term."""
    ys = torch.softmax(x, -1)
    yt = torch.softmax(z, -1)
    terms, gsum = [], None
    for w, dim in ((beta, -1), (gamma, 0)):
        if w is None:
            continue
        rho, g = _rho(ys, yt, dim, need_grad)
        term = 1.0 - rho.squeeze(dim)
        terms.append(w * term.mean())
        if need_grad:
            k = -w / rho.numel()
            gsum = g.mul_(k) if gsum is None else gsum.add_(g, alpha=k)
    loss = coef * (terms[0] + terms[1] if len(terms) == 2 else terms[0])
    if not need_grad:
        return loss, None
    gsum.mul_(coef)
    # Back through the softmax, row by row.
    grad = gsum.sub_((gsum * ys).sum(-1, keepdim=True)).mul_(ys)
    return loss, grad


class DISTLoss(torch.autograd.Function):
    """Scalar DIST loss (exact Pearson mode) of logit rows x = s/τ and z = t/τ; saves only dL/dx."""

    @staticmethod
    def forward(ctx, x: Tensor, z: Tensor, coef: float, beta: float | None, gamma: float | None) -> Tensor:  # type: ignore[override]
        loss, grad = dist_forward(x, z, coef, beta, gamma, ctx.needs_input_grad[0])
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return _once("DIST loss", grad, g), None, None, None, None
