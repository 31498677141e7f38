"""Plots of training curves and result bars (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_bars", "plot_histories", "plot_history", "read_metrics"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_history(history: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str = "") -> Path:
    """Training loss and test accuracy per epoch, side by side."""
    return plot_histories({"run": history}, path, title=title)


def plot_histories(
    histories: Mapping[str, Sequence[Mapping[str, Any]]], path: str | os.PathLike, *, title: str = ""
) -> Path:
    """Loss and test accuracy curves of several runs (one line per name)."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, h in histories.items():
        ax1.plot([r["epoch"] for r in h], [r["loss"] for r in h], label=name)
        acc = [(r["epoch"], r["test_acc"]) for r in h if "test_acc" in r]
        if acc:
            ax2.plot(*zip(*acc), label=name, marker="." if len(acc) < 30 else None)
    ax1.set(xlabel="epoch", ylabel="training loss", yscale="log")
    ax2.set(xlabel="epoch", ylabel="test accuracy (%)")
    if len(histories) > 1:
        ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bars(
    names: Sequence[str],
    means: Sequence[float],
    errors: Sequence[float] | None,
    path: str | os.PathLike,
    *,
    ylabel: str = "test accuracy (%)",
    title: str = "",
    reference: float | None = None,
    reference_label: str = "teacher",
) -> Path:
    """Bars with error bars (e.g. 95% CI half-widths); an optional horizontal reference line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(names) + 1.5), 3.6))
    ax.bar(range(len(names)), means, yerr=errors, capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    lo = min(m - (e if errors else 0) for m, e in zip(means, errors or [0] * len(means)))
    hi = max(m + (e if errors else 0) for m, e in zip(means, errors or [0] * len(means)))
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=reference_label)
        ax.legend(fontsize=8)
        hi = max(hi, reference)
    pad = max(1.0, 0.15 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
