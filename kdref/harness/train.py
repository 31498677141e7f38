"""The training loop: teacher (trained once, cached), student distilled with any kdref method, on CPU or CUDA, in one
process or under ``torchrun`` (gloo on CPU, NCCL on GPUs), with per-epoch JSON-lines metrics, atomic per-epoch
checkpoints and an exact ``resume``.

Reproducibility: the student's initial weights come from ``seed`` alone (the same for every method, so runs pair
across methods), the batch order from a ``DistributedSampler`` seeded by ``seed`` and the epoch, and the
augmentation and mixup draws from generators seeded by (seed, epoch, rank). A checkpoint holds the weights, the
optimiser and schedule, the epoch and the global RNG states of torch, NumPy and Python, so a resumed run ends with
the same weights, bit for bit on CPU, as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch import Tensor, nn

from kdref.losses import funmatch as _funmatch

from .data import Data, augment, load_data
from .methods import Batch, Method, get_method, teacher_output
from .models import build_model

__all__ = ["TrainConfig", "cache_dir", "evaluate", "load_teacher", "train", "train_teacher"]

DEFAULT_EPOCHS = {"digits": 40, "synthetic": 40, "cifar": 240}


@dataclass
class TrainConfig:
    """One run. ``None`` means: the method's recipe, else the dataset's default."""

    method: str = "hinton"
    data: str = "digits"
    data_root: str | None = None
    data_fraction: float = 1.0
    synthetic: dict[str, Any] = field(default_factory=dict)  # keyword arguments of make_synthetic
    student: str = "mlp:32"
    teacher: str = "mlp:256,256"
    epochs: int | None = None
    batch_size: int = 128
    lr: float = 1e-2
    weight_decay: float = 0.0
    augment: str | None = None  # "none" | "basic" | "strong"
    mixup: bool | None = None
    seed: int = 0
    teacher_seed: int = 0
    teacher_epochs: int | None = None
    teacher_lr: float = 1e-2
    teacher_batch_size: int = 128
    teacher_checkpoint: str | None = None  # a state_dict file to use as the teacher instead of training one
    # method options
    temperature: float | None = None
    beta: float | None = None
    warmup_epochs: int | None = None
    distillation: str = "hard"
    teacher_mode: str | None = None
    dist_intra: str = "global"
    simkd_factor: int = 2
    # running
    device: str = "auto"
    amp: str = "auto"  # bf16 autocast: "auto" (on CUDA), "on", "off"
    out_dir: str | None = None
    resume: bool = False
    eval_every: int = 1  # 0: evaluate after the last epoch only
    stop_after: int | None = None  # stop after this epoch (to simulate an interruption); resume continues
    cache: str | None = None
    progress: bool | None = None  # None: when stdout is a tty
    plot: bool = True
    quiet: bool = False
    threads: int | None = 1  # torch.set_num_threads on CPU (None: leave torch's setting)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- environment -----------------------------------------------------------------------------------------------------
def cache_dir(path: str | None = None) -> Path:
    """The teacher cache: ``path``, else ``$KDREF_CACHE``, else ``~/.cache/kdref``."""
    p = Path(path or os.environ.get("KDREF_CACHE") or Path.home() / ".cache" / "kdref")
    p.mkdir(parents=True, exist_ok=True)
    return p


def _world() -> tuple[int, int, int]:
    if tdist.is_available() and tdist.is_initialized():
        return tdist.get_rank(), tdist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def _init_distributed(device: str) -> bool:
    """Initialise the process group under torchrun (WORLD_SIZE > 1): NCCL on CUDA, gloo on CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or tdist.is_initialized():
        return False
    backend = "nccl" if device.startswith("cuda") else "gloo"
    tdist.init_process_group(backend)
    return True


def _device(choice: str) -> str:
    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, then os.replace: readers never see a partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global state user code may draw from
    torch.manual_seed(seed)


def _gen(*parts: int) -> torch.Generator:
    h = hashlib.sha256(repr(parts).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(h[:8], "little") % 2**63)


def _rng_state() -> dict[str, Any]:
    st: Any = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (st[0], torch.from_numpy(st[1].astype(np.int64)), int(st[2]), int(st[3]), float(st[4])),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    random.setstate(_tuplify(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


# -- data batches ----------------------------------------------------------------------------------------------------
def _batches(n: int, batch_size: int, seed: int, epoch: int, rank: int, world: int) -> list[Tensor]:
    """This rank's index batches for ``epoch``: DistributedSampler order, equal shards, the incomplete last batch
    dropped when there is more than one batch."""
    from torch.utils.data import DistributedSampler

    indices: Any = range(n)  # a sized sequence is all DistributedSampler reads
    sampler: DistributedSampler[int] = DistributedSampler(
        indices, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=False
    )
    sampler.set_epoch(epoch)
    idx = torch.tensor(list(iter(sampler)), dtype=torch.long)
    local = max(1, batch_size // world)
    chunks = list(idx.split(local))
    if len(chunks) > 1 and len(chunks[-1]) < local:
        chunks.pop()
    return chunks


def _lr_lambda(total_steps: int):
    def f(step: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))

    return f


@torch.no_grad()
def evaluate(model_predict, x: Tensor, y: Tensor, device: str, *, batch_size: int = 1024) -> tuple[float, Tensor]:
    """Accuracy (%) and the predicted classes of ``model_predict`` over (x, y)."""
    preds = []
    for i in range(0, len(x), batch_size):
        preds.append(model_predict(x[i : i + batch_size].to(device)).argmax(-1).cpu())
    pred = torch.cat(preds)
    return 100.0 * (pred == y).double().mean().item(), pred


# -- teacher -------------------------------------------------------------------------------------------------------------
def _teacher_key(data: Data, cfg: TrainConfig, epochs: int) -> dict[str, Any]:
    return {
        "data": data.name,
        "meta": {k: v for k, v in data.meta.items() if k not in ("fraction", "subset_seed", "root")},
        "synthetic": cfg.synthetic if data.kind == "synthetic" else {},
        "n_train": len(data.y_train),
        "model": cfg.teacher,
        "epochs": epochs,
        "seed": cfg.teacher_seed,
        "lr": cfg.teacher_lr,
        "batch_size": cfg.teacher_batch_size,
        "augment": "basic",
    }


def teacher_cache_path(data: Data, cfg: TrainConfig, epochs: int) -> Path:
    """``<cache>/teacher-<data>-<model>-<sha256 of the teacher config, 16 hex>.pt``."""
    key = json.dumps(_teacher_key(data, cfg, epochs), sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    model = cfg.teacher.replace(":", "-").replace(",", "_")
    return cache_dir(cfg.cache) / f"teacher-{data.name}-{model}-{digest}.pt"


def train_teacher(
    data: Data, spec: str, *, epochs: int, seed: int, lr: float, batch_size: int, device: str
) -> nn.Module:
    """A teacher trained with cross-entropy on the full training split, with basic augmentation, Adam + cosine."""
    torch.manual_seed(seed)
    model = build_model(spec, data.input_shape, data.num_classes).to(device)
    steps = epochs * len(_batches(len(data.y_train), batch_size, seed, 0, 0, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(steps))
    model.train()
    for epoch in range(epochs):
        g = _gen(seed, epoch, 0, 1)
        for idx in _batches(len(data.y_train), batch_size, seed, epoch, 0, 1):
            x = augment(data.x_train[idx], data.kind, g).to(device)
            loss = F.cross_entropy(model(x), data.y_train[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def load_teacher(data: Data, cfg: TrainConfig, device: str, *, log=print) -> tuple[nn.Module, bool]:
    """The teacher for ``cfg``: from ``cfg.teacher_checkpoint``, else from the cache, else trained and cached.

    Files are state_dicts loaded with ``torch.load(weights_only=True)``. Under torchrun rank 0 trains and the other
    ranks wait and load. Returns (teacher in eval mode with frozen parameters, whether it came from a file).
    """
    model = build_model(cfg.teacher, data.input_shape, data.num_classes)
    epochs = cfg.teacher_epochs or DEFAULT_EPOCHS[data.kind] * 2
    path = Path(cfg.teacher_checkpoint) if cfg.teacher_checkpoint else teacher_cache_path(data, cfg, epochs)
    rank, world, _ = _world()
    loaded = path.is_file()
    if not loaded and not cfg.teacher_checkpoint:
        if rank == 0:
            t0 = time.perf_counter()
            trained = train_teacher(
                data,
                cfg.teacher,
                epochs=epochs,
                seed=cfg.teacher_seed,
                lr=cfg.teacher_lr,
                batch_size=cfg.teacher_batch_size,
                device=device,
            )
            atomic_save({k: v.cpu() for k, v in trained.state_dict().items()}, path)
            log(f"teacher {cfg.teacher} trained in {time.perf_counter() - t0:.1f} s, cached at {path}")
        if world > 1:
            tdist.barrier()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, loaded


# -- the run -------------------------------------------------------------------------------------------------------------
def _progress(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    try:
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, unit="epoch", dynamic_ncols=True)
    except ImportError:
        return _SimpleBar(total, initial)


class _SimpleBar:
    def __init__(self, total: int, initial: int):
        self.total, self.n, self.post = total, initial, ""

    def update(self, k: int = 1) -> None:
        self.n += k
        filled = int(30 * self.n / max(self.total, 1))
        sys.stdout.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.n}/{self.total} {self.post}")
        sys.stdout.flush()

    def set_postfix_str(self, s: str) -> None:
        self.post = s

    def close(self) -> None:
        sys.stdout.write("\n")


def _make_method(cfg: TrainConfig) -> Method:
    return get_method(
        cfg.method,
        temperature=cfg.temperature,
        beta=cfg.beta,
        warmup_epochs=cfg.warmup_epochs,
        distillation=cfg.distillation,
        teacher_mode=cfg.teacher_mode,
        dist_intra=cfg.dist_intra,
        simkd_factor=cfg.simkd_factor,
    )


def train(cfg: TrainConfig, *, data: Data | None = None) -> dict[str, Any]:
    """Run ``cfg``; returns a summary (final test accuracy, teacher accuracy, history...). ``data`` may be passed to
    skip loading (it must be what ``cfg`` names)."""
    device = _device(cfg.device)
    if device == "cpu" and cfg.threads:
        torch.set_num_threads(cfg.threads)
    own_group = _init_distributed(device)
    try:
        return _train(cfg, device, data)
    finally:
        if own_group:
            tdist.destroy_process_group()


def _train(cfg: TrainConfig, device: str, data: Data | None) -> dict[str, Any]:
    rank, world, _ = _world()
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    log = (lambda *a: None) if (cfg.quiet or rank != 0) else (lambda *a: print(*a, flush=True))
    method = _make_method(cfg)
    full = data if data is not None else load_data(cfg.data, root=cfg.data_root, **cfg.synthetic)
    train_data = full.subset(cfg.data_fraction, cfg.seed)
    teacher, teacher_acc = None, None
    if method.teacher_output is not None:
        teacher, _ = load_teacher(full, cfg, device, log=log)
        teacher_acc, teacher_pred = evaluate(teacher, full.x_test, full.y_test, device)
    epochs = cfg.epochs or DEFAULT_EPOCHS[full.kind] * int(method.recipe.get("epochs_factor", 1))
    strength = cfg.augment or method.recipe.get("augment", "basic")
    mixup = method.recipe.get("mixup", False) if cfg.mixup is None else cfg.mixup
    if method.teacher_mode == "fixed":
        mixup = False
    use_amp = cfg.amp == "on" or (cfg.amp == "auto" and device.startswith("cuda"))

    _seed_all(cfg.seed)
    base = build_model(cfg.student, full.input_shape, full.num_classes)
    student = method.build_student(base, teacher, full.num_classes).to(device)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(train_data.y_train)
    steps_per_epoch = len(_batches(n, cfg.batch_size, cfg.seed, 0, rank, world))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(epochs * steps_per_epoch))
    model: nn.Module = student
    if world > 1:
        model = nn.parallel.DistributedDataParallel(student, device_ids=[device] if device.startswith("cuda") else None)

    fixed_targets = None
    if teacher is not None and method.teacher_mode == "fixed":
        with torch.no_grad():
            fixed_targets = torch.cat(
                [
                    teacher_output(method, teacher, train_data.x_train[i : i + 1024].to(device))
                    for i in range(0, n, 1024)
                ]
            )

    out = Path(cfg.out_dir) if cfg.out_dir else None
    ckpt = out / "checkpoint.pt" if out else None
    metrics_path = out / "metrics.jsonl" if out else None
    history: list[dict[str, Any]] = []
    start = 1
    if out and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    if cfg.resume and ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        student.load_state_dict(state["student"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        history = json.loads(state["history"])
        start = int(state["epoch"]) + 1
        log(f"resumed from {ckpt} at epoch {start}")
    elif metrics_path is not None and rank == 0 and metrics_path.exists():
        metrics_path.unlink()

    log(
        f"kdref train: method {method.name}, data {full.name} ({n} train / {len(full.y_test)} test), student "
        f"{cfg.student}, teacher {cfg.teacher if teacher is not None else '-'}"
        + (f" ({teacher_acc:.2f}%)" if teacher_acc is not None else "")
        + f", {epochs} epochs, device {device}, world {world}"
        + (", bf16 autocast" if use_amp else "")
    )
    show = (sys.stdout.isatty() if cfg.progress is None else cfg.progress) and rank == 0 and not cfg.quiet
    bar = _progress(show, epochs, start - 1)
    last_epoch = epochs if cfg.stop_after is None else min(epochs, cfg.stop_after)
    predict = lambda x: method.predict(student, x)  # noqa: E731
    t_start = time.perf_counter()
    for epoch in range(start, last_epoch + 1):
        student.train()
        t0 = time.perf_counter()
        g_aug, g_mix = _gen(cfg.seed, epoch, rank, 2), _gen(cfg.seed, epoch, 3)
        total, count = 0.0, 0
        for idx in _batches(n, cfg.batch_size, cfg.seed, epoch - 1, rank, world):
            x0, y = train_data.x_train[idx], train_data.y_train[idx]
            xs = augment(x0, full.kind, g_aug, strength=strength)
            xt = augment(x0, full.kind, g_aug, strength=strength) if method.teacher_mode == "independent" else xs
            mix = None
            if mixup:
                a = _funmatch.mixup_coefficient(g_mix)
                (xs,) = _funmatch.mixup_batch(xs, a=a)
                mix = (a, torch.roll(y, 1, 0).to(device))
                if method.teacher_mode == "independent":
                    (xt,) = _funmatch.mixup_batch(xt, a=_funmatch.mixup_coefficient(g_mix))
                else:
                    xt = xs
            xs, y = xs.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=use_amp):
                t_out = None
                if teacher is not None:
                    if fixed_targets is not None:
                        t_out = fixed_targets[idx.to(fixed_targets.device)]
                    else:
                        t_out = teacher_output(method, teacher, xt.to(device))
                loss = method.loss(model, Batch(xs, y, mix, t_out, epoch))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        row: dict[str, Any] = {
            "epoch": epoch,
            "loss": total / max(count, 1),
            "lr": sched.get_last_lr()[0],
            "seconds": time.perf_counter() - t0,
        }
        if rank == 0 and ((cfg.eval_every and epoch % cfg.eval_every == 0) or epoch == epochs):
            student.eval()
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=use_amp):
                row["test_acc"], pred = evaluate(predict, full.x_test, full.y_test, device)
            if teacher is not None:
                row["agreement"] = 100.0 * (pred == teacher_pred).double().mean().item()
        history.append(row)
        if rank == 0 and metrics_path is not None:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
        if rank == 0 and ckpt is not None:
            atomic_save(
                {
                    "student": student.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "epoch": epoch,
                    "rng": _rng_state(),
                    "history": json.dumps(history),
                    "config": json.dumps(cfg.to_dict(), default=str),
                },
                ckpt,
            )
        if bar is not None:
            bar.set_postfix_str(
                f"loss {row['loss']:.4f}" + (f" acc {row['test_acc']:.2f}%" if "test_acc" in row else "")
            )
            bar.update(1)
        elif not cfg.quiet and rank == 0 and cfg.eval_every and epoch % max(1, epochs // 10) == 0:
            log(
                f"epoch {epoch}/{epochs} loss {row['loss']:.4f}"
                + (f" test {row['test_acc']:.2f}%" if "test_acc" in row else "")
            )
    if bar is not None:
        bar.close()
    if world > 1:
        tdist.barrier()
    final: dict[str, Any] = next((r for r in reversed(history) if "test_acc" in r), {})
    result = {
        "method": method.name,
        "config": cfg.to_dict(),
        "epochs": epochs,
        "completed_epochs": history[-1]["epoch"] if history else start - 1,
        "test_acc": final.get("test_acc"),
        "agreement": final.get("agreement"),
        "teacher_acc": teacher_acc,
        "train_size": n,
        "seconds": time.perf_counter() - t_start,
        "world_size": world,
        "history": history,
    }
    if rank == 0 and out is not None:
        (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
        if cfg.plot:
            try:
                from .plots import plot_history

                plot_history(history, out / "curves.png", title=f"{method.name} on {full.name}")
            except ImportError:
                pass
    if final:
        log(f"done: test accuracy {final['test_acc']:.2f}%" + (f" (teacher {teacher_acc:.2f}%)" if teacher_acc else ""))
    result["student"] = student
    return result
