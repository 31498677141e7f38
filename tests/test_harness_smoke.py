"""Harness smoke tests: every method one short epoch on tiny data, data loaders, models, the teacher cache."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from kdref.harness import METHODS, TrainConfig, load_digits, make_synthetic, train
from kdref.harness.data import augment, load_cifar
from kdref.harness.models import build_model
from kdref.harness.train import load_teacher, teacher_cache_path


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def tiny(tmp_path, **kw) -> TrainConfig:
    base = dict(
        data_fraction=0.1,
        student="mlp:8",
        teacher="mlp:16",
        teacher_epochs=1,
        epochs=1,
        batch_size=64,
        cache=str(tmp_path / "cache"),
        quiet=True,
        plot=False,
        eval_every=0,
    )
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_one_epoch(method, digits, tmp_path):
    r = train(tiny(tmp_path, method=method), data=digits)
    assert r["completed_epochs"] == 1
    assert 0.0 <= r["test_acc"] <= 100.0
    assert np.isfinite(r["history"][-1]["loss"])
    assert (r["teacher_acc"] is None) == (method == "none")


@pytest.mark.parametrize("mode", ["fixed", "independent"])
def test_funmatch_teacher_modes(mode, digits, tmp_path):
    r = train(tiny(tmp_path, method="funmatch", teacher_mode=mode), data=digits)
    assert np.isfinite(r["history"][-1]["loss"])


def test_deit_soft_head_and_outputs(digits, tmp_path):
    out = tmp_path / "run"
    r = train(tiny(tmp_path, method="deit", distillation="soft", out_dir=str(out), epochs=2, eval_every=1), data=digits)
    rows = [line for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    assert len(rows) == 2 and (out / "checkpoint.pt").is_file() and (out / "result.json").is_file()
    assert r["test_acc"] is not None


def test_simkd_reuses_the_frozen_teacher_head(digits, tmp_path):
    r = train(tiny(tmp_path, method="simkd"), data=digits)
    student = r["student"]
    assert all(not p.requires_grad for p in student.teacher_classifier.parameters())


def test_teacher_cache_is_safe_and_reused(digits, tmp_path):
    cfg = tiny(tmp_path)
    t1, loaded1 = load_teacher(digits, cfg, "cpu", log=lambda *a: None)
    path = teacher_cache_path(digits, cfg, 1)
    assert path.is_file() and not loaded1
    assert len(path.stem.rsplit("-", 1)[-1]) == 16  # the config checksum is in the name
    state = torch.load(path, weights_only=True)  # a plain state_dict: safe loading works
    assert set(state) == set(t1.state_dict())
    t2, loaded2 = load_teacher(digits, cfg, "cpu", log=lambda *a: None)
    assert loaded2
    for a, b in zip(t1.state_dict().values(), t2.state_dict().values()):
        assert torch.equal(a, b)
    other = teacher_cache_path(digits, tiny(tmp_path, teacher_seed=1), 1)
    assert other != path


def test_digits_split_is_fixed_and_stratified(digits):
    again = load_digits()
    assert torch.equal(digits.y_test, again.y_test) and torch.equal(digits.x_train, again.x_train)
    assert digits.x_train.shape[1:] == (1, 8, 8) and len(digits.y_train) + len(digits.y_test) == 1797
    counts = torch.bincount(digits.y_test, minlength=10).float()
    assert counts.min() >= 58 and counts.max() <= 62
    sub = digits.subset(0.1, seed=3)
    assert torch.bincount(sub.y_train, minlength=10).min() >= 1 and len(sub.y_train) < 130


def test_synthetic_is_seeded():
    a = make_synthetic(n_train=200, n_test=300, num_classes=12, groups=3, seed=1)
    b = make_synthetic(n_train=200, n_test=300, num_classes=12, groups=3, seed=1)
    c = make_synthetic(n_train=200, n_test=300, num_classes=12, groups=3, seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    m = make_synthetic(n_train=500, n_test=10, num_classes=5, groups=5, labels="mlp", seed=0)
    assert torch.bincount(m.y_train, minlength=5).min() > 20  # balanced labeller


def test_augment_is_reproducible(digits):
    x = digits.x_train[:16]
    a = augment(x, "digits", torch.Generator().manual_seed(0))
    b = augment(x, "digits", torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)
    img = torch.randn(4, 3, 32, 32)
    assert augment(img, "cifar", torch.Generator().manual_seed(0)).shape == img.shape


def _write_fake_cifar(root, num_classes: int, per_file: int = 6):
    rng = np.random.default_rng(0)
    if num_classes == 10:
        folder, files, key = (
            root / "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
            b"labels",
        )
    else:
        folder, files, key = root / "cifar-100-python", ["train", "test"], b"fine_labels"
    folder.mkdir(parents=True)
    for name in files:
        d = {
            b"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
            key: list(rng.integers(0, num_classes, per_file)),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(d, f)


@pytest.mark.parametrize("num_classes", [10, 100])
def test_cifar_loader_on_a_fake_folder(num_classes, tmp_path):
    _write_fake_cifar(tmp_path, num_classes)
    data = load_cifar(tmp_path, num_classes)
    n_train = 30 if num_classes == 10 else 6
    assert data.x_train.shape == (n_train, 3, 32, 32) and data.x_test.shape == (6, 3, 32, 32)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.num_classes == num_classes and data.kind == "cifar"
    with pytest.raises(FileNotFoundError):
        load_cifar(tmp_path / "nowhere", num_classes)


@pytest.mark.parametrize("spec", ["resnet8x4", "resnet32x4"])
def test_cifar_resnets_forward_shapes(spec):
    m = build_model(spec, (3, 32, 32), 100).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert m(x).shape == (2, 100)
        assert m.feature_map(x).shape == (2, 256, 8, 8)
    n_params = sum(p.numel() for p in m.parameters())
    assert (1.1e6 < n_params < 1.4e6) if spec == "resnet8x4" else (7.2e6 < n_params < 7.6e6)
