"""Run the property suite in-process and turn pytest's reports into a function × property table."""

from __future__ import annotations

import contextlib
import io
import json
import platform
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ._contract import CONTRACT

STATUS = {"passed": "holds", "failed": "FAILS", "skipped": "skip"}
LEGEND = "holds: the property holds · FAILS: it does not · skip: not applicable here · n/p: function not provided"


@dataclass
class Outcome:
    """One property (a test function) run against one implementation."""

    test: str
    implementation: str
    kind: str
    functions: tuple[str, ...]
    property: str
    status: str = ""  # "" until a report arrives: deselected tests never get one
    detail: str = ""
    provided: tuple[str, ...] = ()


@dataclass(eq=False)  # pluggy keeps plugins in sets: a plugin must stay hashable
class Collector:
    """A pytest plugin that records each conformance test's outcome with its marker metadata."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        marker = item.get_closest_marker("kdref")
        callspec = getattr(item, "callspec", None)
        impl = callspec.params.get("impl") if callspec is not None else None
        if marker is None or impl is None:
            return
        doc = (getattr(getattr(item, "function", None), "__doc__", None) or "").strip().splitlines()
        self.outcomes[item.nodeid] = Outcome(
            test=item.originalname if isinstance(item, pytest.Function) else item.name,
            implementation=impl.id,
            kind=marker.kwargs.get("kind", "law"),
            functions=tuple(marker.kwargs.get("functions", ())),
            property=doc[0] if doc else item.name,
            provided=tuple(f for f in marker.kwargs.get("functions", ()) if impl.provides(f)),
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        out = self.outcomes.get(report.nodeid)
        if out is None or (report.outcome == "passed" and report.when != "call"):
            return
        if report.outcome == "passed":
            out.status = "holds"
        elif report.outcome == "skipped":
            out.status = "skip"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            out.detail = reason.removeprefix("Skipped: ")
        elif report.outcome == "failed":
            out.status = "FAILS"
            out.detail = _failure_summary(report.longreprtext)


def _failure_summary(text: str, lines: int = 30) -> str:
    """The assertion message and Hypothesis's falsifying example, without the traceback noise."""
    keep = [ln for ln in text.splitlines() if ln.startswith("E ") or "Falsifying" in ln or "reproduce_failure" in ln]
    return "\n".join(ln.removeprefix("E ").rstrip() for ln in keep[:lines]) or text[-2000:]


def run_suite(extra_args: list[str] | None = None, *, show_pytest: bool = False) -> tuple[int, list[Outcome]]:
    """Run ``kdref.conformance`` with pytest and return (exit code, outcomes)."""
    collector = Collector()
    ini = Path(__file__).with_name("check.ini")
    args = [
        "--pyargs",
        "kdref.conformance",
        "-c",
        str(ini),
        "--rootdir",
        str(ini.parent),
        "-q",
        "--no-header",
        *(extra_args or []),
    ]
    sink: Any = contextlib.nullcontext() if show_pytest else contextlib.redirect_stdout(io.StringIO())
    with sink:
        code = pytest.main(args, plugins=[collector])
    return int(code), [o for o in collector.outcomes.values() if o.status]


def header() -> dict[str, str]:
    """What was tested with what: versions and platform, for the report's first lines."""
    import hypothesis
    import numpy
    import torch

    import kdref

    return {
        "kdref": kdref.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "hypothesis": hypothesis.__version__,
        "python": platform.python_version(),
        "cuda": str(torch.cuda.is_available()),
    }


def table(outcomes: list[Outcome]) -> str:
    """Rows: contract function × property; columns: implementations; cells: holds / FAILS / skip."""
    impls = list(dict.fromkeys(o.implementation for o in outcomes))
    cells: dict[tuple[str, str], dict[str, str]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for o in outcomes:
        for fn in o.functions:
            # A property over several functions says nothing about one the implementation does not provide.
            status = o.status if fn in o.provided else "n/p"
            cells.setdefault((fn, o.test), {})[o.implementation] = status
            kinds[(fn, o.test)] = o.kind
    order = {name: i for i, name in enumerate(CONTRACT)}
    rows = sorted(cells, key=lambda k: (order.get(k[0], len(order)), kinds[k] != "agreement", k[1]))
    fn_w = max([8, *(len(r[0]) for r in rows)])
    prop_w = max([8, *(len(_short(r[1])) for r in rows)])
    lines = ["implementations: " + "  ".join(f"[{i + 1}] {name}" for i, name in enumerate(impls)), LEGEND, ""]
    lines.append(
        f"{'function':<{fn_w}}  {'property':<{prop_w}}  {'kind':<10}  "
        + "  ".join(f"{'[' + str(i + 1) + ']':<5}" for i in range(len(impls)))
    )
    for row in rows:
        statuses = [cells[row].get(name, "-") for name in impls]
        lines.append(
            f"{row[0]:<{fn_w}}  {_short(row[1]):<{prop_w}}  {kinds[row]:<10}  " + "  ".join(f"{s:<5}" for s in statuses)
        )
    return "\n".join(lines)


def _short(test: str) -> str:
    return re.sub(r"^test_", "", test)


def failures(outcomes: list[Outcome], selection_args: list[str] | None = None) -> str:
    """Each failure with its counter-example and a command that reproduces it."""
    options = "".join(f" {a}" for a in selection_args or [])
    parts = []
    for o in outcomes:
        if o.status == "FAILS":
            parts.append(
                f"--- {o.test} [{o.implementation}]: {o.property}\n{o.detail}\n"
                f"reproduce: pytest --pyargs kdref.conformance{options} -k '{o.test} and {o.implementation}'"
            )
    return "\n\n".join(parts)


def write_json(path: str | Path, code: int, outcomes: list[Outcome]) -> None:
    """The same report for machines."""
    doc = {"header": header(), "exit_code": code, "outcomes": [asdict(o) for o in outcomes]}
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")
