"""Checkpoint/resume: an interrupted and resumed run ends with bitwise the same weights as an uninterrupted one."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("sklearn")

from kdref.harness import TrainConfig, load_digits, train


@pytest.mark.parametrize("method", ["dkd", "funmatch"])
def test_resume_is_bitwise_exact(method, tmp_path):
    data = load_digits()
    common = dict(
        method=method,
        data_fraction=0.15,
        student="mlp:16",
        teacher="mlp:32",
        teacher_epochs=2,
        epochs=4,
        batch_size=64,
        cache=str(tmp_path / "cache"),
        quiet=True,
        plot=False,
        eval_every=1,
        warmup_epochs=3,
    )
    full = train(TrainConfig(out_dir=str(tmp_path / "full"), **common), data=data)
    first = train(TrainConfig(out_dir=str(tmp_path / "cut"), stop_after=2, **common), data=data)
    assert first["completed_epochs"] == 2
    torch.manual_seed(12345)  # disturb the global RNG: the checkpoint must restore it
    resumed = train(TrainConfig(out_dir=str(tmp_path / "cut"), resume=True, **common), data=data)
    assert resumed["completed_epochs"] == 4 and len(resumed["history"]) == 4
    a, b = full["student"].state_dict(), resumed["student"].state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["loss"] for r in full["history"]] == [r["loss"] for r in resumed["history"]]
    ckpt = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)  # safe loading of checkpoints
    assert ckpt["epoch"] == 4
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4
