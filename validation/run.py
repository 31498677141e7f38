"""Run every validation experiment and write ``validation/results/``: one JSON file and one plot per experiment and
the markdown table ``validation.md`` for the docs' Validation page.

    python -m validation.run            # the full run (10 seeds; about 10–15 minutes on 2 CPU cores)
    python -m validation.run --quick    # a smoke version (2 seeds, short schedules; results to a temporary folder)
    python -m validation.run --only dkd_beta deit_hard_soft

Each run is the harness's ``train`` with one thread, two runs at a time (``--jobs``). Teachers (one per seed and
task) are trained first and cached (``--cache``, default ``$KDREF_CACHE`` or ``~/.cache/kdref``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

if __package__ in (None, ""):  # python validation/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from validation.configs import EXPERIMENTS, Experiment
from validation.configs.experiments import SEEDS as SEEDS_DEFAULT

RESULTS = Path(__file__).resolve().parent / "results"


# -- statistics ---------------------------------------------------------------------------------------------------------
def mean_ci(values: list[float]) -> dict[str, float]:
    """Mean and the half-width of its 95% t-interval (n − 1 degrees of freedom)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    m = float(x.mean())
    if n < 2:
        return {"mean": m, "ci95": float("nan"), "n": n, "sd": float("nan")}
    sd = float(x.std(ddof=1))
    return {"mean": m, "ci95": float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)), "n": n, "sd": sd}


def verdict_of(d: dict[str, float]) -> str:
    lo, hi = d["mean"] - d["ci95"], d["mean"] + d["ci95"]
    if not math.isfinite(lo):
        return "not shown"
    return "held" if lo > 0 else ("reversed" if hi < 0 else "not shown")


# -- running --------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _data(key: str):
    from kdref.harness.data import load_data

    spec = json.loads(key)
    return load_data(spec["data"], **spec.get("synthetic", {}))


def _data_key(cfg: dict[str, Any]) -> str:
    return json.dumps({"data": cfg["data"], "synthetic": cfg.get("synthetic", {})}, sort_keys=True)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _teacher_job(cfg: dict[str, Any]) -> str:
    from kdref.harness.train import TrainConfig, load_teacher

    tc = TrainConfig(**cfg)
    load_teacher(_data(_data_key(cfg)), tc, "cpu", log=lambda *a: None)
    return f"{cfg['data']} seed {cfg['teacher_seed']}"


def _run_job(job: tuple[str, str, int, dict[str, Any]]) -> dict[str, Any]:
    from kdref.harness.train import TrainConfig, train

    exp, arm, seed, cfg = job
    r = train(TrainConfig(**cfg), data=_data(_data_key(cfg)))
    accs = [h["test_acc"] for h in r["history"] if "test_acc" in h]
    return {
        "experiment": exp,
        "arm": arm,
        "seed": seed,
        "test_acc": r["test_acc"],
        "best_acc": max(accs) if accs else r["test_acc"],
        "agreement": r["agreement"],
        "teacher_acc": r["teacher_acc"],
        "final_loss": r["history"][-1]["loss"],
        "train_size": r["train_size"],
        "seconds": r["seconds"],
        "curve": [(h["epoch"], h["test_acc"]) for h in r["history"] if "test_acc" in h],
    }


def _configs(exp: Experiment, quick: bool, cache: str) -> list[tuple[str, str, int, dict[str, Any]]]:
    jobs = []
    seeds = 2 if quick else exp.seeds
    for seed in range(seeds):
        for arm in exp.arms:
            cfg = {**exp.base, **arm.overrides, "seed": seed, "teacher_seed": seed, "cache": cache}
            cfg.update(quiet=True, progress=False, plot=False, threads=1)
            cfg.setdefault("eval_every", 0)
            if quick:
                cfg["epochs"] = max(3, cfg["epochs"] // 20)
                cfg["teacher_epochs"] = max(3, cfg["teacher_epochs"] // 8)
                if cfg["eval_every"]:
                    cfg["eval_every"] = max(1, cfg["eval_every"] // 20)
                if cfg.get("synthetic"):
                    cfg["synthetic"] = {**cfg["synthetic"], "n_test": 2000}
            jobs.append((exp.name, arm.label, seed, cfg))
    return jobs


def _teacher_cfgs(jobs) -> list[dict[str, Any]]:
    seen, out = set(), []
    for _, _, _, cfg in jobs:
        if cfg.get("method") == "none":
            continue
        key = json.dumps(
            {
                k: cfg.get(k)
                for k in (
                    "data",
                    "synthetic",
                    "teacher",
                    "teacher_epochs",
                    "teacher_seed",
                    "teacher_lr",
                    "teacher_batch_size",
                    "cache",
                )
            },
            sort_keys=True,
        )
        if key not in seen:
            seen.add(key)
            out.append({k: v for k, v in cfg.items() if k != "method"} | {"method": "hinton"})
    return out


# -- extra checks ---------------------------------------------------------------------------------------------------------
def deit_identity_check(cache: str, quick: bool) -> dict[str, Any]:
    """No augmentation + a teacher right on every training image: hard distillation == label-only training exactly."""
    import torch

    from kdref.harness.train import TrainConfig, load_teacher, train

    _init_worker()
    base = dict(
        data="digits",
        student="mlp:32",
        teacher="mlp:256,256",
        teacher_epochs=10 if quick else 80,
        data_fraction=0.2,
        augment="none",
        epochs=5 if quick else 100,
        batch_size=512,
        lr=1e-2,
        seed=0,
        teacher_seed=0,
        cache=cache,
        quiet=True,
        plot=False,
        eval_every=0,
    )
    data = _data(_data_key(base))
    teacher, _ = load_teacher(data, TrainConfig(**base), "cpu", log=lambda *a: None)
    sub = data.subset(0.2, 0)
    with torch.no_grad():
        teacher_train_correct = bool((teacher(sub.x_train).argmax(1) == sub.y_train).all())
    a = train(TrainConfig(method="none", **base), data=data)
    b = train(TrainConfig(method="deit-hard", **base), data=data)
    same = all(
        torch.equal(x, y) for x, y in zip(a["student"].state_dict().values(), b["student"].state_dict().values())
    )
    return {
        "teacher_right_on_every_training_image": teacher_train_correct,
        "identical_weights": same,
        "test_acc_labels": a["test_acc"],
        "test_acc_deit_hard": b["test_acc"],
        "held": (same if teacher_train_correct else None),
    }


def dkd_suppression(cache: str, quick: bool) -> dict[str, float]:
    """Mean teacher target-class probability p_t and 1 − p_t at T = 4 on the synthetic training set (seed 0)."""
    import torch

    from kdref.harness.train import TrainConfig, load_teacher
    from validation.configs.experiments import SYNTH

    cfg = {**SYNTH, "teacher_seed": 0, "cache": cache, "method": "dkd"}
    if quick:
        cfg["teacher_epochs"] = max(3, cfg["teacher_epochs"] // 8)
        cfg["synthetic"] = {**cfg["synthetic"], "n_test": 2000}
    data = _data(_data_key(cfg))
    teacher, _ = load_teacher(data, TrainConfig(**cfg), "cpu", log=lambda *a: None)
    with torch.no_grad():
        logits = teacher(data.x_train)
        out = {}
        for t in (1.0, 4.0):
            pt = torch.softmax(logits / t, 1).gather(1, data.y_train[:, None]).squeeze(1)
            out[f"mean_1_minus_pt_T{t:g}"] = float((1 - pt).mean())
    return out


# -- summaries -------------------------------------------------------------------------------------------------------
def summarise(exp: Experiment, rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_arm: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        by_arm.setdefault(r["arm"], {})[r["seed"]] = r
    arms = {}
    for arm in exp.arms:
        rs = by_arm.get(arm.label, {})
        arms[arm.label] = {
            "test_acc": mean_ci([r["test_acc"] for r in rs.values()]),
            # best-epoch minus final accuracy, where accuracy was tracked during training
            "overfit": mean_ci([r["best_acc"] - r["test_acc"] for r in rs.values()])
            if rs and all(len(r["curve"]) > 1 for r in rs.values())
            else None,
            "final_loss": mean_ci([r["final_loss"] for r in rs.values()]),
            "agreement": mean_ci([r["agreement"] for r in rs.values()])
            if all(r["agreement"] is not None for r in rs.values())
            else None,
            "train_size": next(iter(rs.values()))["train_size"] if rs else None,
        }
    comps = []
    for a, b in exp.comparisons:
        seeds = sorted(set(by_arm.get(a, {})) & set(by_arm.get(b, {})))
        d = mean_ci([by_arm[a][s]["test_acc"] - by_arm[b][s]["test_acc"] for s in seeds])
        comps.append({"a": a, "b": b, "diff": d, "verdict": verdict_of(d)})
    teacher = [r["teacher_acc"] for r in rows if r["teacher_acc"] is not None]
    summary = {"arms": arms, "comparisons": comps, "teacher_acc": mean_ci(teacher) if teacher else None}
    summary["verdict"], summary["verdict_note"] = _verdict(exp, summary)
    return summary


def _verdict(exp: Experiment, s: dict[str, Any]) -> tuple[str, str]:
    comps = {(c["a"], c["b"]): c for c in s["comparisons"]}
    if exp.name == "temperature_capacity":
        out = []
        best = {}
        for cap in ("small", "large"):
            ms = {t: s["arms"][f"{cap} T={t:g}"]["test_acc"]["mean"] for t in (1.0, 2.0, 4.0, 8.0, 16.0)}
            best[cap] = max(ms, key=ms.get)
            out.append(f"{cap}: best T = {best[cap]:g}")
        small_mid = best["small"] in (2.0, 4.0) and comps[("small T=4", "small T=16")]["verdict"] == "held"
        large_flat = comps[("large T=16", "large T=4")]["verdict"] != "reversed"
        v = "held" if small_mid and large_flat else ("partly held" if small_mid or large_flat else "not shown")
        return v, "; ".join(out) + (
            f"; small student intermediate-T optimum: {small_mid}; large student flat at large T: {large_flat}; "
            f"small student T=4 vs T=1: {comps[('small T=4', 'small T=1')]['verdict']} (the small student's gain is "
            "over large T, not over T = 1)"
        )
    if exp.name == "funmatch_consistency":
        a = comps[("function matching", "fixed teacher")]["verdict"]
        b = comps[("function matching", "independent views")]["verdict"]
        v = (
            "held"
            if a == b == "held"
            else ("partly held" if "held" in (a, b) else ("reversed" if a == b == "reversed" else "not shown"))
        )
        return v, f"function matching vs fixed: {a}; vs independent: {b}"
    if exp.name == "deit_hard_soft":
        c = comps[("deit hard", "deit soft")]
        v = {
            "held": "held (hard better)",
            "not shown": "not shown (no difference)",
            "reversed": "reversed (soft better)",
        }[c["verdict"]]
        return v, "paired difference hard − soft"
    if exp.name == "soft_targets_regulariser":
        vs = [comps[k]["verdict"] for k in (("soft 3%", "labels 3%"), ("soft 10%", "labels 10%"))]
        less = all(
            s["arms"][f"soft {f}"]["overfit"] is not None and s["arms"][f"labels {f}"]["overfit"] is not None
            for f in ("3%", "10%")
        ) and all(
            s["arms"][f"soft {f}"]["overfit"]["mean"] <= s["arms"][f"labels {f}"]["overfit"]["mean"]
            for f in ("3%", "10%")
        )
        v = (
            "held"
            if all(x == "held" for x in vs) and less
            else ("partly held" if "held" in vs or less else "not shown")
        )
        return (
            v,
            f"accuracy gain at 3% / 10%: {vs[0]} / {vs[1]}; less overfitting (best − final) with soft targets: {less}",
        )
    c = s["comparisons"][0]
    return c["verdict"], f"paired difference {c['a']} − {c['b']}"


def _fmt(d: dict[str, float] | None) -> str:
    if d is None:
        return "—"
    return f"{d['mean']:.2f} ± {d['ci95']:.2f}" if math.isfinite(d["ci95"]) else f"{d['mean']:.2f}"


def _plot(exp: Experiment, summary: dict[str, Any], rows: list[dict[str, Any]], out: Path) -> str | None:
    try:
        from kdref.harness.plots import plot_bars
    except ImportError:
        return None
    names = [a.label for a in exp.arms]
    means = [summary["arms"][n]["test_acc"]["mean"] for n in names]
    errs = [summary["arms"][n]["test_acc"]["ci95"] for n in names]
    errs = [e if math.isfinite(e) else 0.0 for e in errs]
    teacher = summary["teacher_acc"]["mean"] if summary["teacher_acc"] else None
    path = out / f"{exp.name}.png"
    plot_bars(names, means, errs, path, title=exp.title + " (mean, 95% CI)", reference=teacher)
    if exp.name == "funmatch_consistency":
        try:
            from kdref.harness.plots import _plt

            plt = _plt()
            fig, ax = plt.subplots(figsize=(6, 3.6))
            for arm in exp.arms[:5]:
                curves = [r["curve"] for r in rows if r["arm"] == arm.label and r["curve"]]
                if curves:
                    ep = [e for e, _ in curves[0]]
                    acc = np.mean([[a for _, a in c] for c in curves], axis=0)
                    ax.plot(ep, acc, label=arm.label)
            ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="Patience: test accuracy over training (mean)")
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(out / f"{exp.name}_curves.png", dpi=110)
            plt.close(fig)
        except Exception:
            pass
    return path.name


def write_markdown(results: list[dict[str, Any]], extra: dict[str, Any], out: Path, meta: dict[str, Any]) -> None:
    lines = [
        "# Validation results",
        "",
        f"Generated by `python -m validation.run{' --quick' if meta['quick'] else ''}` on {meta['date']} "
        f"({meta['seeds']} seeds per arm unless stated, {meta['jobs']} processes, {meta['minutes']:.1f} min; "
        f"torch {meta['torch']}, CPU). Accuracy in %; ± is the half-width of the 95% t-interval over seeds; "
        "differences are paired by seed (same split, subset, initial weights, batch order and teacher).",
        "",
        "## Summary",
        "",
        "| claim | paper | measured (paired difference, points) | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        c = r["summary"]["comparisons"][0]
        lines.append(
            f"| {r['title']} | {r['source']} | {c['a']} − {c['b']}: {_fmt(c['diff'])} | **{r['summary']['verdict']}** |"
        )
    for r in results:
        s = r["summary"]
        lines += [
            "",
            f"## {r['title']}",
            "",
            f"**Claim.** {r['claim']} ({r['source']})",
            "",
            f"**Setup.** {r['notes']}",
        ]
        if s["teacher_acc"]:
            lines.append(f"Teacher test accuracy: {_fmt(s['teacher_acc'])}.")
        lines += [
            "",
            "| arm | test accuracy | best − final | agreement with teacher | final training loss |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, a in s["arms"].items():
            lines.append(
                f"| {name} | {_fmt(a['test_acc'])} | {_fmt(a['overfit'])} | {_fmt(a['agreement'])} | {_fmt(a['final_loss'])} |"
            )
        lines += ["", "| paired difference | points | verdict |", "| --- | --- | --- |"]
        for c in s["comparisons"]:
            lines.append(f"| {c['a']} − {c['b']} | {_fmt(c['diff'])} | {c['verdict']} |")
        lines += ["", f"**Verdict: {s['verdict']}** — {s['verdict_note']}."]
        if r["name"] == "deit_hard_soft" and "deit_identity" in extra:
            e = extra["deit_identity"]
            lines.append(
                f"Identity check (no augmentation, teacher right on every training image: "
                f"{e['teacher_right_on_every_training_image']}): hard distillation gives weights identical to "
                f"label-only training: {e['identical_weights']}."
            )
        if r["name"] == "dkd_beta" and "dkd_suppression" in extra:
            e = extra["dkd_suppression"]
            lines.append(
                f"Suppression diagnostic (teacher, synthetic training set): mean 1 − p_t = {e['mean_1_minus_pt_T1']:.3f} "
                f"at T = 1 and {e['mean_1_minus_pt_T4']:.3f} at T = 4 — the weight KD puts on NCKD."
            )
        if r.get("plot"):
            lines += ["", f"![{r['title']}]({r['plot']})"]
    (out / "validation.md").write_text("\n".join(lines) + "\n")


def rebuild(out: Path) -> int:
    """Recompute the summaries and validation.md from the recorded runs in ``out/*.json`` (no training)."""
    results, extra, meta = [], {}, None
    for e in EXPERIMENTS:
        path = out / f"{e.name}.json"
        if not path.is_file():
            continue
        rec = json.loads(path.read_text())
        rec["summary"] = summarise(e, rec["runs"])
        extra.update(rec.get("extra", {}))
        meta = rec.get("meta", meta)
        path.write_text(json.dumps(rec, indent=1, default=str))
        results.append(rec)
    if meta is None:
        meta = {"quick": False, "date": "?", "seeds": SEEDS_DEFAULT, "jobs": 2, "minutes": float("nan"), "torch": "?"}
    write_markdown(results, extra, out, meta)
    print(f"rebuilt {out / 'validation.md'} from {len(results)} experiments")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 seeds, short schedules (a smoke test)")
    p.add_argument("--only", nargs="+", help="experiment names")
    p.add_argument("--jobs", type=int, default=2, help="parallel processes (one thread each)")
    p.add_argument("--out", help="results folder (default validation/results; --quick: a temporary folder)")
    p.add_argument("--cache", help="teacher cache (default $KDREF_CACHE or ~/.cache/kdref)")
    p.add_argument("--from-json", action="store_true", help="only rebuild summaries and validation.md from the JSON")
    args = p.parse_args(argv)
    import torch

    if args.from_json:
        return rebuild(Path(args.out) if args.out else RESULTS)

    from kdref.harness.train import cache_dir

    out = Path(args.out) if args.out else (RESULTS if not args.quick else Path(tempfile.mkdtemp(prefix="kdref-val-")))
    out.mkdir(parents=True, exist_ok=True)
    cache = str(cache_dir(args.cache))
    exps = [e for e in EXPERIMENTS if not args.only or e.name in args.only]
    jobs = [j for e in exps for j in _configs(e, args.quick, cache)]
    t0 = time.perf_counter()
    ctx = get_context("spawn" if sys.platform == "darwin" else "fork")
    teachers = _teacher_cfgs(jobs)
    print(
        f"validation: {len(exps)} experiments, {len(jobs)} runs, {len(teachers)} teachers, {args.jobs} processes -> {out}",
        flush=True,
    )
    with ctx.Pool(args.jobs, initializer=_init_worker) as pool:
        for name in pool.imap_unordered(_teacher_job, teachers):
            print(f"  teacher ready: {name}", flush=True)
        rows = []
        for i, r in enumerate(pool.imap_unordered(_run_job, jobs), 1):
            rows.append(r)
            if i % 20 == 0 or i == len(jobs):
                print(f"  {i}/{len(jobs)} runs ({time.perf_counter() - t0:.0f} s)", flush=True)
    extra: dict[str, Any] = {}
    if any(e.name == "deit_hard_soft" for e in exps):
        extra["deit_identity"] = deit_identity_check(cache, args.quick)
    if any(e.name == "dkd_beta" for e in exps):
        extra["dkd_suppression"] = dkd_suppression(cache, args.quick)
    results = []
    for e in exps:
        er = sorted((r for r in rows if r["experiment"] == e.name), key=lambda r: (r["arm"], r["seed"]))
        summary = summarise(e, er)
        rec = {
            "name": e.name,
            "title": e.title,
            "claim": e.claim,
            "source": e.source,
            "notes": e.notes,
            "base_config": e.base,
            "arms": [dataclasses.asdict(a) for a in e.arms],
            "quick": args.quick,
            "summary": summary,
            "extra": {k: v for k, v in extra.items() if k.startswith(e.name.split("_")[0])},
            "runs": er,
        }
        rec["plot"] = _plot(e, summary, er, out)
        results.append(rec)
        print(f"{e.title}: {summary['verdict']} — {summary['verdict_note']}", flush=True)
    meta = {
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d"),
        "seeds": 2 if args.quick else max(e.seeds for e in exps),
        "jobs": args.jobs,
        "minutes": (time.perf_counter() - t0) / 60,
        "torch": torch.__version__,
    }
    for rec in results:
        rec["meta"] = meta
        (out / f"{rec['name']}.json").write_text(json.dumps(rec, indent=1, default=str))
    write_markdown(results, extra, out, meta)
    print(f"wrote {out / 'validation.md'} ({meta['minutes']:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
