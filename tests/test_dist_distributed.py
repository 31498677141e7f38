"""DIST under data parallelism: two gloo processes on the CPU against the single-process global batch."""

from __future__ import annotations

import os
import socket
import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kdref.losses import dist as D
from kdref.losses import distributed as DD

WORLD = 2
ROWS = 5  # per rank
C = 7


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    s = torch.randn(WORLD * ROWS, C, dtype=torch.float64, generator=g) * 2.0
    t = torch.randn(WORLD * ROWS, C, dtype=torch.float64, generator=g) * 3.0
    return s, t


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(rank: int, port: int, out_dir: str) -> None:
    import datetime

    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=datetime.timedelta(seconds=30))
    try:
        s, t = _batch()
        mine = slice(rank * ROWS, (rank + 1) * ROWS)
        results: dict[str, np.ndarray] = {}
        for mode in ("exact", "product_add"):
            x = s[mine].clone().requires_grad_()
            loss = DD.dist_loss(x, t[mine], tau=2.0, eps_mode=mode)
            intra = DD.intra_class_relation(x.detach(), t[mine], tau=2.0, eps_mode=mode)
            loss.backward()
            grad = x.grad.clone()
            dist.all_reduce(grad)  # DDP averages the gradients of its parameters: emulate it on the logits' rows
            value = loss.detach().clone()
            dist.all_reduce(value)
            results[f"{mode}_grad_avg"] = (grad / WORLD).numpy()
            results[f"{mode}_grad_local"] = x.grad.numpy()
            results[f"{mode}_value_avg"] = (value / WORLD).numpy()
            results[f"{mode}_intra"] = intra.numpy()
        # torch's own autograd all_gather (deprecated in 2.13, still works with gloo): its backward also sums.
        x = s[mine].clone().requires_grad_()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import torch.distributed.nn.functional as dnn

            full = torch.cat(dnn.all_gather(x), 0)
        D.intra_class_relation(full, torch.cat([t[r * ROWS : (r + 1) * ROWS] for r in range(WORLD)])).backward()
        results["torch_all_gather_grad"] = x.grad.numpy()
        np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **results)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, np.ndarray]]:
    out = tmp_path_factory.mktemp("ddp")
    ctx = mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=False, start_method="spawn")
    for _ in range(60):  # bounded: at most 60 s
        if ctx.join(timeout=1):
            break
    else:
        for p in ctx.processes:
            p.kill()
        pytest.fail("the two gloo processes did not finish within 60 s")
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(WORLD)]


def _single(mode: str) -> tuple[float, np.ndarray, float]:
    s, t = _batch()
    x = s.clone().requires_grad_()
    loss = D.dist_loss(x, t, tau=2.0, eps_mode=mode)
    loss.backward()
    return float(loss.detach()), x.grad.numpy(), float(D.intra_class_relation(s, t, tau=2.0, eps_mode=mode))


def test_per_shard_intra_differs_from_global_intra() -> None:
    """(a) The intra term of each shard, or their mean, is not the global-batch intra term."""
    s, t = _batch()
    whole = float(D.intra_class_relation(s, t))
    shards = [float(D.intra_class_relation(s[r * ROWS : (r + 1) * ROWS], t[r * ROWS : (r + 1) * ROWS])) for r in (0, 1)]
    assert abs(np.mean(shards) - whole) > 1e-3, (shards, whole)


@pytest.mark.parametrize("mode", ["exact", "product_add"])
def test_gathered_value_equals_global_batch_value(ranks: list[dict[str, np.ndarray]], mode: str) -> None:
    """(b) The gathered intra term on every rank, and the rank-averaged dist_loss, equal the single-process values."""
    value, _, intra = _single(mode)
    for r in range(WORLD):
        np.testing.assert_allclose(ranks[r][f"{mode}_intra"], intra, rtol=1e-12)
        np.testing.assert_allclose(ranks[r][f"{mode}_value_avg"], value, rtol=1e-12)


@pytest.mark.parametrize("mode", ["exact", "product_add"])
def test_ddp_averaged_gradient_equals_global_gradient(ranks: list[dict[str, np.ndarray]], mode: str) -> None:
    """(c) Each rank's gradient rows, averaged as DDP does, equal the single-process global-batch gradient rows."""
    _, grad, _ = _single(mode)
    for r in range(WORLD):
        mine = slice(r * ROWS, (r + 1) * ROWS)
        # Per-row: the rank's own rows, after DDP's 1/W averaging, are the global gradient's rows.
        np.testing.assert_allclose(ranks[r][f"{mode}_grad_local"] / WORLD, grad[mine], rtol=1e-10, atol=1e-14)
    # Parameter-level: a parameter touching every row gets the average of the ranks' contributions.
    total = sum(ranks[r][f"{mode}_grad_local"] for r in range(WORLD)) / WORLD
    np.testing.assert_allclose(total, grad[:ROWS] + grad[ROWS:], rtol=1e-10, atol=1e-14)


def test_torch_all_gather_backward_sums_over_ranks(ranks: list[dict[str, np.ndarray]]) -> None:
    """torch.distributed.nn.functional.all_gather's backward sums the ranks' gradients, like kdref's gather."""
    s, t = _batch()
    x = s.clone().requires_grad_()
    D.intra_class_relation(x, t).backward()
    for r in range(WORLD):
        np.testing.assert_allclose(
            ranks[r]["torch_all_gather_grad"], WORLD * x.grad.numpy()[r * ROWS : (r + 1) * ROWS], rtol=1e-10
        )


def test_without_process_group_it_is_the_plain_loss() -> None:
    """Without an initialised process group the helpers are the single-process functions."""
    s, t = _batch()
    assert DD.gather_batch(s) is s
    assert float(DD.dist_loss(s, t, tau=2.0)) == pytest.approx(float(D.dist_loss(s, t, tau=2.0)), rel=1e-14)
    with pytest.raises(TypeError, match="gather_batch: `x`"):
        DD.gather_batch(s.numpy())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"dist_loss: `student_logits` must have shape \(N, C\)"):
        DD.dist_loss(s[None], t[None])
