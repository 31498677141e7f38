#!/usr/bin/env bash
# One short GPU check (a few minutes on a lent GPU machine): CUDA-capable tests, then the benchmark with CUDA rows.
# Usage: OUT=/some/dir bash validation/bench/gpu_check.sh   (writes pytest.txt, bench_cuda.{json,md,png} to $OUT)
set -u
OUT="${OUT:-/tmp/kdref_gpu}"
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
[ -f .venv/bin/activate ] && . .venv/bin/activate
python -c "import torch; print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0))" | tee "$OUT/env.txt"
# CUDA tests (tests/test_fused.py::test_fused_cuda_matches_cpu and any other test with "cuda" in its id).
timeout 180 python -m pytest -q -p no:cacheprovider -k cuda tests 2>&1 | tail -20 | tee "$OUT/pytest.txt"
# Benchmark rows on CUDA: float32 and bfloat16, all shapes, eager + compiled; peak memory by max_memory_allocated.
timeout 300 python validation/bench/run.py --device cuda --out "$OUT" --name bench_cuda --repeat-scale 1.0 \
  2>&1 | tail -60 | tee "$OUT/bench.txt"
