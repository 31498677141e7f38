"""DIST under data parallelism: the intra-class term over the GLOBAL batch, with gradients (Huang et al. 2022).

The intra-class relation correlates each class over the batch, so under DistributedDataParallel a rank that computes
it on its own shard optimises a different loss (the official code does this, 32 samples per GPU on ImageNet).
:func:`gather_batch` concatenates every rank's rows with an autograd-aware all-gather whose backward sums the
gradients of all ranks into each rank's own rows. Hence, when every rank evaluates the same global intra term, rank r
receives W·∂L/∂x_r and DDP's average over the W ranks gives exactly the single-process gradient; the inter term is a
mean over rows, so each rank keeps it local (equal shards average to the global mean).

Recipe::

    loss = ce + kdref.losses.distributed.dist_loss(student_logits, teacher_logits)  # under DDP, equal shards
    loss.backward()                                                               # DDP averages the gradients
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from .._checks import check_real, fail
from . import dist as _dist
from ._ops import reduce, value_checks_active

__all__ = ["dist_loss", "gather_batch", "intra_class_relation"]


class _GatherRows(torch.autograd.Function):
    """all_gather along dim 0; backward: all_reduce(SUM) of the full gradient, then this rank's slice."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        world = dist.get_world_size(group)
        ctx.group, ctx.rank, ctx.rows = group, dist.get_rank(group), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows], None


def _world(group) -> int:
    return dist.get_world_size(group) if dist.is_available() and dist.is_initialized() else 1


def gather_batch(x: Tensor, group=None) -> Tensor:
    """Concatenate every rank's ``x`` along dim 0 (rank order); gradients reach each rank's rows, summed over ranks.

    Every rank must pass the same shape (equal shards; checked when value checks are on, one small collective).
    Without an initialised process group, or with one rank, ``x`` is returned unchanged.
    """
    fn = "gather_batch"
    if not isinstance(x, Tensor):
        fail(fn, f"`x` must be a torch.Tensor, got {type(x).__name__}", TypeError)
    if x.dim() < 1:
        fail(fn, f"`x` must have a batch dimension, got shape {tuple(x.shape)}")
    if _world(group) == 1:
        return x
    if value_checks_active():
        shape = torch.tensor(list(x.shape), dtype=torch.long, device=x.device)
        shapes = [torch.empty_like(shape) for _ in range(_world(group))]
        dist.all_gather(shapes, shape, group=group)
        if any(not torch.equal(s, shape) for s in shapes):
            fail(fn, f"every rank must pass the same shape (equal shards), got {[tuple(s.tolist()) for s in shapes]}")
    return _GatherRows.apply(x, group)


def intra_class_relation(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    tau: float = 1.0,
    eps_mode: str = "exact",
    eps: float = 1e-8,
    process_group=None,
) -> Tensor:
    """The intra-class relation of the global batch (every rank's rows, in rank order); the same value on every rank.

    Backpropagating it on every rank and letting DDP average gives the gradient of the single-process global loss.
    """
    s = gather_batch(student_logits, process_group)
    t = gather_batch(teacher_logits.detach(), process_group)
    return _dist.intra_class_relation(s, t, tau=tau, eps_mode=eps_mode, eps=eps)


def dist_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    beta: float = 2.0,
    gamma: float = 2.0,
    tau: float = 1.0,
    eps_mode: str = "exact",
    eps: float = 1e-8,
    process_group=None,
) -> Tensor:
    """τ²·(β·inter(local shard) + γ·intra(global batch)) for DDP: its DDP-averaged gradient is the global loss's.

    The returned value differs between ranks by the local inter term; its average over ranks is the global-batch
    :func:`kdref.losses.dist_loss` (equal shards). Without a process group this is ``kdref.losses.dist_loss``.
    """
    fn = "dist_loss"
    beta = check_real(fn, "beta", beta, low=0.0)
    gamma = check_real(fn, "gamma", gamma, low=0.0)
    tau = check_real(fn, "tau", tau, low=0.0, low_open=True)
    inter = _dist.inter_class_relation(student_logits, teacher_logits, tau=tau, eps_mode=eps_mode, eps=eps)
    if student_logits.dim() != 2:
        fail(fn, f"`student_logits` must have shape (N, C) exactly, got shape {tuple(student_logits.shape)}")
    intra = intra_class_relation(
        student_logits, teacher_logits, tau=tau, eps_mode=eps_mode, eps=eps, process_group=process_group
    )
    loss = tau * tau * (beta * inter + gamma * intra)
    return reduce(
        fn, loss, "none", torch.Size([]), {"student_logits": student_logits, "teacher_logits": teacher_logits}
    )
