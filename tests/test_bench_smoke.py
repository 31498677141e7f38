"""The benchmark's --quick run writes JSON and Markdown with the documented schema (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_schema(tmp_path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "validation" / "bench" / "run.py"),
            "--quick",
            "--out",
            str(tmp_path),
            "--dtypes",
            "float32",
            "--losses",
            "kd_loss,dkd_loss,dist_loss",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    doc = json.loads((tmp_path / "bench_quick.json").read_text())
    assert doc["schema_version"] == 1 and doc["mode"] == "quick"
    for key in ("platform", "torch", "torch_threads", "cpu_count", "device"):
        assert key in doc["machine"]
    assert {c["loss"] for c in doc["cases"]} == {"kd_loss", "dkd_loss", "dist_loss"}
    for c in doc["cases"]:
        assert set(c) >= {"loss", "shape", "dtype", "device", "baseline", "timings", "value_checks_cost_fraction"}
        assert {"baseline", "kdref", "kdref_no_value_checks"} <= set(c["timings"])
        for st in c["timings"].values():
            assert set(st) >= {
                "median_ms",
                "iqr_ms",
                "repeats",
                "speedup_vs_baseline",
                "saved_for_backward_bytes",
                "memory_ratio_vs_baseline",
            }
            assert st["median_ms"] > 0 and st["repeats"] >= 3
    assert isinstance(doc["targets"], list)
    assert (tmp_path / "bench_quick.md").read_text().startswith("# kdref loss benchmark")
