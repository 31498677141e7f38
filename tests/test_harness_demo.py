"""``kdref demo`` in its tiny mode, and the train/demo subcommands' argument parsing."""

from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("sklearn")

from kdref.harness.cli import add_subcommands, config_from_args
from kdref.harness.demo import DEMO_RUNS, demo


def test_demo_tiny(tmp_path):
    lines: list[str] = []
    rows = demo(out_dir=str(tmp_path / "demo"), tiny=True, cache=str(tmp_path / "cache"), print_fn=lines.append)
    assert [r["run"] for r in rows] == [r[0] for r in DEMO_RUNS]
    assert all(0.0 <= r["test_acc"] <= 100.0 for r in rows)
    assert any(line.startswith("| run |") for line in lines)
    assert json.loads((tmp_path / "demo" / "results.json").read_text()) == rows
    if pytest.importorskip("matplotlib"):
        assert (tmp_path / "demo" / "demo.png").stat().st_size > 1000


def test_subcommands_parse():
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", "--method", "dkd", "--beta", "2", "--epochs", "3"])
    cfg = config_from_args(args)
    assert cfg.method == "dkd" and cfg.beta == 2.0 and cfg.epochs == 3 and cfg.student == "mlp:32"
    assert callable(args.run)
    cifar = config_from_args(parser.parse_args(["train", "--data", "cifar100", "--data-root", "/x"]))
    assert cifar.student == "resnet8x4" and cifar.teacher == "resnet32x4" and cifar.lr == 1e-3
    assert callable(parser.parse_args(["demo", "--tiny"]).run)
