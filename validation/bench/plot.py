"""Bar chart of the speed-ups in a benchmark JSON (run.py writes it; ``python plot.py results.json out.png``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = sorted({c["dtype"] for c in doc["cases"]})
    fig, axes = plt.subplots(len(dtypes), 1, figsize=(12, 3.6 * len(dtypes)), squeeze=False)
    modes = [
        ("kdref", "kdref eager"),
        ("kdref_no_value_checks", "eager, no value checks"),
        ("kdref_compiled", "kdref compiled (inductor)"),
    ]
    for ax, dt in zip(axes[:, 0], dtypes):
        cases = [c for c in doc["cases"] if c["dtype"] == dt]
        labels = [f"{c['loss']}\n{c['shape'][0]}×{c['shape'][1]}" for c in cases]
        w = 0.27
        for i, (key, name) in enumerate(modes):
            vals = [c["timings"][key]["speedup_vs_baseline"] if key in c["timings"] else 0 for c in cases]
            ax.bar([j + (i - 1) * w for j in range(len(cases))], vals, w, label=name)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels(labels, fontsize=6, rotation=90)
        ax.set_ylabel("speed-up vs common formulation")
        ax.set_title(
            f"{doc['machine']['device']} {dt}, forward + backward "
            f"(torch {doc['machine']['torch']}, {doc['machine']['torch_threads']} threads)",
            fontsize=9,
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
