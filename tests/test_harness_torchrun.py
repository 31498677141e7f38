"""Two CPU processes under torchrun (gloo): DDP training runs, and the global-batch DIST intra term matches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

pytest.importorskip("sklearn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("intra", ["global", "local"])
def test_torchrun_two_processes_gloo(intra, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        "-m",
        "kdref.harness",
        "train",
        "--method",
        "dist",
        "--dist-intra",
        intra,
        "--data-fraction",
        "0.1",
        "--student",
        "mlp:8",
        "--teacher",
        "mlp:16",
        "--teacher-epochs",
        "1",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "c"),
        "--no-plot",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2 and result["completed_epochs"] == 2
    assert result["config"]["dist_intra"] == intra
    assert (out / "checkpoint.pt").is_file()
