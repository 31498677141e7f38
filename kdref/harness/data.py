"""Datasets for the harness: scikit-learn's bundled 8×8 digits (default, no download), a seeded synthetic task with
unlimited samples, and CIFAR-10/100 read from their standard python pickles in a local folder.

Every loader returns a :class:`Data` with fixed, stratified train/test splits as float32 tensors of shape
(N, C, H, W) (images) or (N, D) (synthetic), int64 labels, and the augmentation that suits it
(:func:`augment`: random shifts + noise for digits, random crop + horizontal flip for CIFAR, noise for synthetic).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Data",
    "augment",
    "load_cifar",
    "load_data",
    "load_digits",
    "make_synthetic",
    "stratified_split",
    "stratified_subset",
]

CIFAR_MEAN = {10: (0.4914, 0.4822, 0.4465), 100: (0.5071, 0.4865, 0.4409)}
CIFAR_STD = {10: (0.2470, 0.2435, 0.2616), 100: (0.2673, 0.2564, 0.2762)}


@dataclass
class Data:
    """A dataset held in memory: ``x_*`` float32, ``y_*`` int64, with its name and augmentation kind."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    kind: str  # "digits" | "synthetic" | "cifar": selects the augmentation
    meta: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def subset(self, fraction: float, seed: int) -> Data:
        """A stratified ``fraction`` of the training split (at least one example a class); the test split is kept."""
        if fraction >= 1.0:
            return self
        idx = stratified_subset(self.y_train.numpy(), fraction, seed)
        return Data(
            self.name,
            self.x_train[idx],
            self.y_train[idx],
            self.x_test,
            self.y_test,
            self.num_classes,
            self.kind,
            {**self.meta, "fraction": fraction, "subset_seed": seed},
        )


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test), each class split in the same proportion, from a seeded permutation."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = round(len(idx) * test_fraction)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def stratified_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a stratified ``fraction`` of ``y`` (at least one per class)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        keep.append(idx[: max(1, round(len(idx) * fraction))])
    return np.sort(np.concatenate(keep))


def load_digits(*, test_fraction: float = 1 / 3, split_seed: int = 0) -> Data:
    """scikit-learn's bundled 8×8 digits (1797 images, 10 classes) as (N, 1, 8, 8) in [0, 1]; fixed stratified split."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the digits dataset needs scikit-learn: pip install 'kdref[harness]'") from e
    bunch = _load()
    x = bunch.images.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    tr, te = stratified_split(y, test_fraction, split_seed)
    xt = torch.from_numpy(x).unsqueeze(1)
    yt = torch.from_numpy(y)
    return Data("digits", xt[tr], yt[tr], xt[te], yt[te], 10, "digits", {"split_seed": split_seed})


def make_synthetic(
    *,
    n_train: int = 2000,
    n_test: int = 10000,
    num_classes: int = 40,
    groups: int = 8,
    dim: int = 32,
    group_spread: float = 1.6,
    class_spread: float = 0.9,
    noise: float = 1.0,
    labels: str = "mixture",
    seed: int = 0,
) -> Data:
    """A seeded Gaussian-mixture task with ``num_classes`` classes in ``groups`` confusable groups.

    Class centres are a group centre (N(0, group_spread²·I)) plus a class offset (N(0, class_spread²·I)); inputs are
    a class centre plus N(0, noise²·I). ``labels="mixture"`` labels each point by its mixture component (classes
    within a group overlap, so the Bayes error is not zero); ``labels="mlp"`` relabels the points by a fixed random
    MLP (64 tanh units) with its class biases balanced on a large pool. The generator depends only on the arguments,
    so any ``n_test`` gives fresh test data from the same distribution (``n_test`` is cheap: use many).
    """
    if labels not in ("mixture", "mlp"):
        raise ValueError(f"make_synthetic: `labels` must be 'mixture' or 'mlp', got {labels!r}")
    g = torch.Generator().manual_seed(10_007 * seed + 17)
    group_of = torch.arange(num_classes) % groups
    gc = torch.randn(groups, dim, generator=g) * group_spread
    centres = gc[group_of] + torch.randn(num_classes, dim, generator=g) * class_spread
    w1 = torch.randn(dim, 64, generator=g) / dim**0.5
    w2 = torch.randn(64, num_classes, generator=g) * 2.0

    def sample(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        y = torch.arange(n) % num_classes
        y = y[torch.randperm(n, generator=gen)]
        x = centres[y] + torch.randn(n, dim, generator=gen) * noise
        return x, y

    x_tr, y_tr = sample(n_train, torch.Generator().manual_seed(10_007 * seed + 1))
    x_te, y_te = sample(n_test, torch.Generator().manual_seed(10_007 * seed + 2))
    if labels == "mlp":
        pool, _ = sample(20000, torch.Generator().manual_seed(10_007 * seed + 3))
        bias = torch.zeros(num_classes)
        for _ in range(200):  # balance the classes of the random labeller on a pool
            freq = torch.bincount(torch.argmax(torch.tanh(pool @ w1) @ w2 + bias, 1), minlength=num_classes)
            bias -= 0.05 * torch.log((freq.float() + 1) / (len(pool) / num_classes))
        y_tr = torch.argmax(torch.tanh(x_tr @ w1) @ w2 + bias, 1)
        y_te = torch.argmax(torch.tanh(x_te @ w1) @ w2 + bias, 1)
    scale = x_tr.std()
    meta = {"seed": seed, "groups": groups, "labels": labels, "dim": dim}
    return Data(
        f"synthetic{num_classes}", x_tr / scale, y_tr.long(), x_te / scale, y_te.long(), num_classes, "synthetic", meta
    )


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def load_cifar(root: str | os.PathLike, num_classes: int = 10) -> Data:
    """CIFAR-10 or CIFAR-100 from the standard python pickles in ``root`` (the extracted ``cifar-10-batches-py`` or
    ``cifar-100-python`` folder, or its parent), normalised by the usual per-channel mean and std. Nothing is
    downloaded. The official train/test split is used.

    Note: the files are python pickles; load only copies you trust (the official archives).
    """
    root = Path(root)
    if num_classes == 10:
        sub, train_files, test_files, key = (
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
            b"labels",
        )
    elif num_classes == 100:
        sub, train_files, test_files, key = "cifar-100-python", ["train"], ["test"], b"fine_labels"
    else:
        raise ValueError(f"load_cifar: `num_classes` must be 10 or 100, got {num_classes!r}")
    if (root / sub).is_dir():
        root = root / sub
    missing = [f for f in train_files + test_files if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"load_cifar: {root} lacks {missing}; expected the extracted python version")

    def read(files: list[str]) -> tuple[Tensor, Tensor]:
        xs, ys = [], []
        for name in files:
            d = _unpickle(root / name)
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[key], dtype=np.int64))
        x = torch.from_numpy(np.concatenate(xs)).float() / 255.0
        mean = torch.tensor(CIFAR_MEAN[num_classes]).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR_STD[num_classes]).view(1, 3, 1, 1)
        return (x - mean) / std, torch.from_numpy(np.concatenate(ys))

    x_tr, y_tr = read(train_files)
    x_te, y_te = read(test_files)
    return Data(f"cifar{num_classes}", x_tr, y_tr, x_te, y_te, num_classes, "cifar", {"root": str(root)})


def load_data(name: str, *, root: str | None = None, seed: int = 0, **kwargs) -> Data:
    """``digits`` | ``synthetic`` (keyword arguments go to :func:`make_synthetic`) | ``cifar10`` | ``cifar100``."""
    if name == "digits":
        return load_digits(**kwargs)
    if name == "synthetic":
        return make_synthetic(seed=kwargs.pop("data_seed", 0), **kwargs)
    if name in ("cifar10", "cifar100"):
        if root is None:
            raise ValueError(f"load_data: {name} needs `root`, the folder holding the python pickles (--data-root)")
        return load_cifar(root, int(name[5:]))
    raise ValueError(f"load_data: unknown dataset {name!r}; known: digits, synthetic, cifar10, cifar100")


def _shift(x: Tensor, pad: int, gen: torch.Generator) -> Tensor:
    """Random translation by up to ``pad`` pixels each way (zero padding), one offset per image."""
    b, c, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (oy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w))[:, None, None, :]
    return xp[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]


def augment(x: Tensor, kind: str, gen: torch.Generator, *, strength: str = "basic") -> Tensor:
    """Augment a CPU batch with draws from ``gen`` only (reproducible): ``strength`` "none" | "basic" | "strong".

    digits: shift ±1 px (±2 strong) + Gaussian noise σ 0.05 (0.15 strong); cifar: 4-px padded random crop +
    horizontal flip; synthetic: Gaussian noise σ 0.1 (0.3 strong).
    """
    if strength == "none":
        return x
    strong = strength == "strong"
    if kind == "digits":
        x = _shift(x, 2 if strong else 1, gen)
        return x + torch.randn(x.shape, generator=gen) * (0.15 if strong else 0.05)
    if kind == "cifar":
        x = _shift(x, 4, gen)
        flip = torch.rand(x.shape[0], generator=gen) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x)
    if kind == "synthetic":
        return x + torch.randn(x.shape, generator=gen) * (0.3 if strong else 0.1)
    raise ValueError(f"augment: unknown kind {kind!r}")
