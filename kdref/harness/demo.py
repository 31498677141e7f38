"""``kdref demo``: on the embedded digits data, train (or load) a teacher, distil a small student with every method,
print a results table and write a bar plot and the training curves. About a minute on 2 CPU cores (the first run
also trains the teacher, about 10 s; it is cached afterwards)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .data import load_digits
from .methods import METHODS
from .train import TrainConfig, train

__all__ = ["DEMO_RUNS", "demo"]

#: (label, method, extra TrainConfig keywords). Every run shares the seed: same split, subset, initial weights.
DEMO_RUNS: list[tuple[str, str, dict[str, Any]]] = [
    ("none (labels only)", "none", {}),
    ("hinton", "hinton", {}),
    ("dkd", "dkd", {"warmup_epochs": 5}),
    ("dist", "dist", {}),
    ("deit (2 heads, hard)", "deit", {}),
    ("deit-hard", "deit-hard", {}),
    ("deit-soft", "deit-soft", {}),
    ("funmatch", "funmatch", {}),
    ("funmatch fixed teacher", "funmatch", {"teacher_mode": "fixed"}),
    ("funmatch independent", "funmatch", {"teacher_mode": "independent"}),
    ("vanillakd", "vanillakd", {}),
    ("simkd", "simkd", {}),
]


def demo(
    *,
    out_dir: str | None = "runs/demo",
    tiny: bool = False,
    cache: str | None = None,
    seed: int = 0,
    methods: list[str] | None = None,
    print_fn=print,
) -> list[dict[str, Any]]:
    """Distil ``mlp:32`` from ``mlp:256,256`` on 25% of the digits training split with each method (150 epochs,
    vanillakd 3×); ``tiny``: 10% and 2 epochs, a teacher of 3 epochs (for tests). Returns the table rows."""
    data = load_digits()
    base: dict[str, Any] = dict(
        data="digits",
        student="mlp:32",
        teacher="mlp:64" if tiny else "mlp:256,256",
        teacher_epochs=3 if tiny else 80,
        data_fraction=0.1 if tiny else 0.25,
        seed=seed,
        cache=cache,
        eval_every=0 if tiny else 5,
        quiet=True,
        progress=False,
        plot=False,
    )
    runs = [r for r in DEMO_RUNS if methods is None or r[1] in methods]
    unknown = set(methods or ()) - set(METHODS)
    if unknown:
        raise ValueError(f"demo: unknown methods {sorted(unknown)}")
    rows, histories = [], {}
    t_all = time.perf_counter()
    print_fn(
        f"kdref demo: digits, teacher {base['teacher']}, student mlp:32, {base['data_fraction']:.0%} of the training split"
    )
    for label, method, extra in runs:
        epochs = 2 if tiny else 150
        if method == "vanillakd":
            epochs *= 3
        cfg = TrainConfig(method=method, epochs=epochs, **base, **extra)
        r = train(cfg, data=data)
        rows.append(
            {
                "run": label,
                "method": method,
                "test_acc": r["test_acc"],
                "agreement": r["agreement"],
                "teacher_acc": r["teacher_acc"],
                "epochs": epochs,
                "seconds": round(r["seconds"], 2),
            }
        )
        histories[label] = r["history"]
        print_fn(f"  {label:<24} {r['test_acc']:6.2f}%  ({r['seconds']:.1f} s)")
    teacher_acc = next((r["teacher_acc"] for r in rows if r["teacher_acc"] is not None), None)
    lines = [
        "| run | method | epochs | test accuracy (%) | agreement with teacher (%) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        agree = "—" if r["agreement"] is None else f"{r['agreement']:.2f}"
        lines.append(f"| {r['run']} | `{r['method']}` | {r['epochs']} | {r['test_acc']:.2f} | {agree} |")
    table = "\n".join(lines)
    print_fn("")
    print_fn(table)
    if teacher_acc is not None:
        print_fn(f"\nteacher: {teacher_acc:.2f}%; one seed on 599 test images: differences under ~2 points are noise.")
    print_fn(f"total {time.perf_counter() - t_all:.1f} s")
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(rows, indent=2))
        (out / "results.md").write_text(table + "\n")
        try:
            from .plots import plot_bars, plot_histories

            plot_bars(
                [r["run"] for r in rows],
                [r["test_acc"] for r in rows],
                None,
                out / "demo.png",
                title="kdref demo: digits, mlp:32 student",
                reference=teacher_acc,
            )
            plot_histories(histories, out / "curves.png", title="kdref demo")
            print_fn(f"wrote {out / 'results.json'}, {out / 'demo.png'}, {out / 'curves.png'}")
        except ImportError:
            print_fn("matplotlib is not installed: no plot (pip install 'kdref[harness]')")
    return rows
