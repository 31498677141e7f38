"""Benchmark kdref's Torch losses against the common formulations, forward + backward, in one process.

    python validation/bench/run.py            # the full CPU benchmark (minutes), writes validation/results/bench_cpu.*
    python validation/bench/run.py --quick    # a tiny smoke run (schema only; used by tests/test_bench_smoke.py)
    python validation/bench/run.py --device cuda --name bench_cuda   # CUDA rows

What is timed: one call of the loss plus ``torch.autograd.grad(loss, student)`` (the student gradient only; the
teacher never requires grad), with a synchronisation on CUDA. Contenders of one case are interleaved repeat by
repeat (baseline, kdref eager, kdref eager without value checks, kdref compiled), so background load hits all of
them alike; each timing is reported as the median and the interquartile range over the repeats, and the speed-up
is baseline median / contender median, measured in the same run.

Memory: on CPU the "extra memory" is the bytes of the tensors saved for backward (counted with
``torch.autograd.graph.saved_tensors_hooks``; storages of the caller's own student/teacher/target tensors are not
counted, each storage once). That is the memory a loss holds between forward and backward, the part that adds to
a model's activation memory. On CUDA, ``torch.cuda.max_memory_allocated`` over forward + backward minus the inputs
is reported as well (peak, transients included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import baselines as B  # noqa: E402

import kdref.losses as L  # noqa: E402
from kdref.losses import compiled as LC  # noqa: E402

SCHEMA_VERSION = 1

# name: (kdref function, compiled function, baseline name, baseline function, needs target, kdref kwargs)
LOSSES: dict[str, tuple] = {
    "kd_loss": (L.kd_loss, LC.kd_loss, "F.kl_div(log_softmax, log_softmax, log_target=True)", B.kl_div_kd, False, {}),
    "dkd_loss": (L.dkd_loss, LC.dkd_loss, "mdistiller dkd_loss (-1000 mask, cat_mask)", B.mdistiller_dkd, True, {}),
    "dist_loss": (L.dist_loss, LC.dist_loss, "official DIST (cosine of centred softmax)", B.official_dist, False, {}),
    "hinton_loss": (
        L.hinton_loss,
        LC.hinton_loss,
        "0.1 CE + 0.9 T^2 kl_div(log_softmax, softmax)",
        B.common_hinton,
        True,
        {},
    ),
    "tckd": (L.tckd, LC.tckd, "mdistiller TCKD (log of softmax sums)", B.mdistiller_tckd, True, {}),
    "nckd": (L.nckd, LC.nckd, "mdistiller NCKD (-1000 mask)", B.mdistiller_nckd, True, {}),
    "deit_soft_loss": (
        L.deit_soft_loss,
        None,
        "0.9 CE + 0.1 tau^2 kl_div (tau=3)",
        lambda s, t, y: B.common_deit_soft(s, t, y, alpha=0.1, tau=3.0),
        True,
        {},
    ),
    "funmatch_loss": (
        L.funmatch_loss,
        None,
        "kl_div(log_softmax, log_softmax, log_target=True), T=1",
        B.common_funmatch,
        False,
        {},
    ),
}
TARGET_LOSSES = ("kd_loss", "dkd_loss", "dist_loss")

FULL_SHAPES = [
    # (label, N, C, repeats, losses, compiled)
    ("256x1000", 256, 1000, 60, tuple(LOSSES), True),
    ("2048x1000", 2048, 1000, 30, tuple(LOSSES), False),
    ("512x32000", 512, 32000, 21, tuple(LOSSES), True),
    ("seq 8x512 tokens x32000", 8 * 512, 32000, 5, ("kd_loss", "dkd_loss", "dist_loss"), False),
]
QUICK_SHAPES = [("8x16", 8, 16, 3, tuple(LOSSES), False)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _step(fn: Callable, s: torch.Tensor, rest: tuple) -> None:
    loss = fn(s, *rest)
    torch.autograd.grad(loss, (s,))


def _saved_bytes(fn: Callable, s: torch.Tensor, rest: tuple) -> int:
    """Bytes of the distinct storages saved for backward, the caller's inputs excluded."""
    own = {s.untyped_storage().data_ptr()} | {
        r.untyped_storage().data_ptr() for r in rest if isinstance(r, torch.Tensor)
    }
    seen: dict[int, int] = {}

    def pack(x: torch.Tensor):
        st = x.untyped_storage()
        if st.data_ptr() not in own and st.data_ptr() != 0:
            seen[st.data_ptr()] = st.nbytes()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        loss = fn(s, *rest)
    torch.autograd.grad(loss, (s,))
    return sum(seen.values())


def _cuda_peak(fn: Callable, s: torch.Tensor, rest: tuple) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    _step(fn, s, rest)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def _stats(xs: list[float]) -> dict:
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return {
        "median_ms": 1e3 * statistics.median(xs),
        "iqr_ms": 1e3 * (q[2] - q[0]),
        "q1_ms": 1e3 * q[0],
        "q3_ms": 1e3 * q[2],
        "repeats": len(xs),
    }


def _no_checks(f: Callable) -> Callable:
    def g(*a):
        old = L.set_value_checks(False)
        try:
            return f(*a)
        finally:
            L.set_value_checks(old)

    return g


def bench_case(name: str, N: int, C: int, dtype: torch.dtype, device: str, repeats: int, compiled: bool) -> dict:
    kd_fn, comp_fn, base_name, base_fn, with_target, kw = LOSSES[name]
    g = torch.Generator().manual_seed(0)
    s = (torch.randn(N, C, generator=g) * 3).to(device=device, dtype=dtype).requires_grad_()
    t = (torch.randn(N, C, generator=g) * 3).to(device=device, dtype=dtype)
    y = torch.randint(0, C, (N,), generator=g).to(device)
    rest = (t, y) if with_target else (t,)
    contenders: dict[str, Callable] = {
        "baseline": base_fn,
        "kdref": lambda a, *r: kd_fn(a, *r, **kw),
        "kdref_no_value_checks": _no_checks(lambda a, *r: kd_fn(a, *r, **kw)),
    }
    if compiled and comp_fn is not None:
        contenders["kdref_compiled"] = lambda a, *r: comp_fn(a, *r, **kw)
    compile_s = None
    for key, f in contenders.items():  # warm up (and compile)
        t0 = time.perf_counter()
        _step(f, s, rest)
        _sync(device)
        if key == "kdref_compiled":
            compile_s = time.perf_counter() - t0
        _step(f, s, rest)
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for key, f in contenders.items():
            _sync(device)
            t0 = time.perf_counter()
            _step(f, s, rest)
            _sync(device)
            times[key].append(time.perf_counter() - t0)
    out: dict = {
        "loss": name,
        "shape": [N, C],
        "dtype": str(dtype).replace("torch.", ""),
        "device": device,
        "baseline": base_name,
        "compile_seconds": compile_s,
        "timings": {},
    }
    base_med = statistics.median(times["baseline"])
    for key, xs in times.items():
        st = _stats(xs)
        st["speedup_vs_baseline"] = base_med / statistics.median(xs)
        try:
            st["saved_for_backward_bytes"] = _saved_bytes(contenders[key], s, rest)
        except Exception as exc:  # e.g. hooks not supported by a compiled graph
            st["saved_for_backward_bytes"] = None
            st["saved_for_backward_error"] = f"{type(exc).__name__}: {str(exc)[:120]}"
        if device.startswith("cuda"):
            st["cuda_peak_extra_bytes"] = _cuda_peak(contenders[key], s, rest)
        out["timings"][key] = st
    b = out["timings"]["baseline"]["saved_for_backward_bytes"]
    for st in out["timings"].values():
        m = st["saved_for_backward_bytes"]
        st["memory_ratio_vs_baseline"] = (m / b) if (m is not None and b) else None
    nc, wc = out["timings"]["kdref_no_value_checks"]["median_ms"], out["timings"]["kdref"]["median_ms"]
    out["value_checks_cost_fraction"] = wc / nc - 1.0
    return out


def machine_info(device: str) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        import kdref

        info["kdref"] = kdref.__version__
    except Exception:
        pass
    if device.startswith("cuda"):
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


TARGETS = {  # (loss, mode): minimum speed-up vs the common eager formulation (float32, fwd+bwd)
    ("kd_loss", "kdref"): 1.2,
    ("dkd_loss", "kdref"): 2.0,
    ("dist_loss", "kdref"): 2.0,
    ("kd_loss", "kdref_compiled"): 3.0,
    ("dkd_loss", "kdref_compiled"): 3.0,
    ("dist_loss", "kdref_compiled"): 3.0,
}


def targets_table(cases: list[dict]) -> list[dict]:
    rows = []
    for c in cases:
        if c["dtype"] != "float32" or c["loss"] not in TARGET_LOSSES:
            continue
        for (loss, mode), need in TARGETS.items():
            if loss == c["loss"] and mode in c["timings"]:
                got = c["timings"][mode]["speedup_vs_baseline"]
                rows.append(
                    {
                        "loss": loss,
                        "shape": c["shape"],
                        "mode": mode,
                        "target_speedup": need,
                        "speedup": got,
                        "met": got >= need,
                    }
                )
        if c["loss"] in ("dkd_loss", "dist_loss"):
            m = c["timings"]["kdref"]["memory_ratio_vs_baseline"]
            rows.append(
                {
                    "loss": c["loss"],
                    "shape": c["shape"],
                    "mode": "kdref (saved-for-backward memory)",
                    "target_memory_ratio": 0.5,
                    "memory_ratio": m,
                    "met": m is not None and m <= 0.5,
                }
            )
    return rows


def _fmt_bytes(n) -> str:
    return "–" if n is None else f"{n / 2**20:.1f} MiB"


def write_markdown(doc: dict, path: Path) -> None:
    m = doc["machine"]
    lines = [
        f"# kdref loss benchmark ({doc['machine']['device']})",
        "",
        f"torch {m['torch']}, {m['torch_threads']} threads, {m['cpu_count']} CPUs, {m['platform']}; "
        f"generated by `python validation/bench/run.py` ({doc['mode']}). Forward + backward (student gradient only), "
        "median over interleaved repeats (IQR in brackets); speed-up = baseline median / contender median, same run. "
        "Memory: bytes saved for backward (saved_tensors_hooks; the caller's inputs excluded).",
        "",
        "| loss | shape | dtype | baseline ms | kdref ms | ×  | no value checks ms | × | compiled ms | × "
        "| saved bytes: baseline → kdref |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in doc["cases"]:
        T = c["timings"]

        def cell(k, T=T):
            if k not in T:
                return "–", "–"
            return f"{T[k]['median_ms']:.2f} [{T[k]['iqr_ms']:.2f}]", f"{T[k]['speedup_vs_baseline']:.2f}"

        b, _ = cell("baseline")
        e, ex = cell("kdref")
        n, nx = cell("kdref_no_value_checks")
        k, kx = cell("kdref_compiled")
        mem = f"{_fmt_bytes(T['baseline']['saved_for_backward_bytes'])} → {_fmt_bytes(T['kdref']['saved_for_backward_bytes'])}"
        lines.append(
            f"| {c['loss']} | {c['shape'][0]}×{c['shape'][1]} | {c['dtype']} | {b} | {e} | {ex} | {n} | {nx} "
            f"| {k} | {kx} | {mem} |"
        )
    lines += [
        "",
        "Baselines: " + "; ".join(f"{k}: {v[2]}" for k, v in LOSSES.items()),
        "",
        "## Targets (float32)",
        "",
        "| loss | shape | mode | target | measured | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in doc["targets"]:
        if "target_speedup" in r:
            lines.append(
                f"| {r['loss']} | {r['shape'][0]}×{r['shape'][1]} | {r['mode']} | ≥ {r['target_speedup']}× "
                f"| {r['speedup']:.2f}× | {'yes' if r['met'] else 'NO'} |"
            )
        else:
            mr = "–" if r["memory_ratio"] is None else f"{r['memory_ratio']:.2f}"
            lines.append(
                f"| {r['loss']} | {r['shape'][0]}×{r['shape'][1]} | {r['mode']} | ≤ 0.5 of baseline | {mr} "
                f"| {'yes' if r['met'] else 'NO'} |"
            )
    costs = [c["value_checks_cost_fraction"] for c in doc["cases"]]
    if costs:
        lines += [
            "",
            f"Value checks cost (kdref / kdref without value checks − 1): median "
            f"{100 * statistics.median(costs):.1f} %, range {100 * min(costs):.1f} % to "
            f"{100 * max(costs):.1f} % over the cases above.",
        ]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (a few ms; no compilation)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "validation" / "results"))
    ap.add_argument("--name", default=None, help="file stem (default bench_cpu / bench_quick / bench_cuda)")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--losses", default=",".join(LOSSES))
    ap.add_argument("--repeat-scale", type=float, default=1.0)
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument(
        "--no-compile", action="store_true", help="skip the compiled contender (inductor compiles are slow)"
    )
    ap.add_argument("--shapes", default=None, help="comma-separated shape labels to run (default: all)")
    a = ap.parse_args(argv)
    shapes = QUICK_SHAPES if a.quick else FULL_SHAPES
    name = a.name or ("bench_quick" if a.quick else f"bench_{a.device.split(':')[0]}")
    wanted = set(a.losses.split(","))
    dtypes = [getattr(torch, d) for d in a.dtypes.split(",")]
    cases = []
    if a.shapes:
        shapes = [sh for sh in shapes if sh[0] in a.shapes.split(",")]
    for label, N, C, reps, losses, comp in shapes:
        comp = comp and not a.no_compile
        for dt in dtypes:
            for loss in losses:
                if loss not in wanted:
                    continue
                r = max(3, int(reps * a.repeat_scale))
                c = bench_case(loss, N, C, dt, a.device, r, comp and dt == torch.float32)
                c["label"] = label
                cases.append(c)
                T = c["timings"]
                print(
                    f"{label:>24} {c['dtype']:>8} {loss:>15}: base {T['baseline']['median_ms']:8.2f} ms, kdref "
                    f"×{T['kdref']['speedup_vs_baseline']:.2f}"
                    + (
                        f", compiled ×{T['kdref_compiled']['speedup_vs_baseline']:.2f}" if "kdref_compiled" in T else ""
                    ),
                    flush=True,
                )
    doc = {
        "schema_version": SCHEMA_VERSION,
        "mode": "quick" if a.quick else "full",
        "machine": machine_info(a.device),
        "compiled_backend": "inductor",
        "memory_metric": "saved_for_backward_bytes (saved_tensors_hooks)",
        "cases": cases,
        "targets": targets_table(cases),
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_markdown(doc, out / f"{name}.md")
    if not a.no_plot and not a.quick:
        from plot import plot

        plot(doc, out / f"{name}.png")
    print(f"wrote {out / name}.json/.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
