"""Every check a docs page names exists, and every method page names at least one.

The pages cite the test or proof behind each identity as inline code, in three forms:

- ``kdref/conformance/test_dkd.py::test_x`` or ``tests/test_x.py::test_y`` (also ``::Class::method`` and a
  ``[param]`` suffix): the file is parsed with :mod:`ast`, never imported, and must define the name;
- ``kdref.symbolic.dkd.prove_x`` (any dotted ``kdref.…`` name, also at the start of a call such as
  ``kdref.presets.preset("dkd")``): the longest importable module prefix is imported and the rest looked up with
  ``getattr``;
- a bare path ``tests/….py`` or ``kdref/….py``: the file must exist.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "node_modules" not in p.parts)
METHOD_PAGES = sorted((DOCS / "methods").glob("*.md"))

# Inline code spans (single or double backticks) outside fenced code blocks.
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}).*?^\1\2\s*$", re.S | re.M)
_SPAN = re.compile(r"(?<!`)(`{1,2})(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_TEST_REF = re.compile(r"((?:tests|kdref)/[\w/]+\.py)::([\w:]+)(?:\[[^\]`]*\])?")
_FILE_REF = re.compile(r"^((?:tests|kdref)/[\w/]+\.py)$")
_DOTTED = re.compile(r"^kdref(?:\.[A-Za-z_]\w*)+")


def _spans(page: Path) -> list[tuple[int, str]]:
    """(line number, text) of every inline code span of the page."""
    text = page.read_text(encoding="utf-8")
    text = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # keep line numbers
    return [(text.count("\n", 0, m.start()) + 1, m.group(2).strip()) for m in _SPAN.finditer(text)]


@functools.cache
def _defined_names(path: Path) -> frozenset[str]:
    """Module-level functions, classes and assigned names, and ``Class::method`` for methods, without importing."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)


def _check_test_ref(path: str, name: str) -> str | None:
    file = ROOT / path
    if not file.is_file():
        return f"{path} does not exist"
    if name not in _defined_names(file):
        return f"{path} defines no {name}"
    return None


def _check_dotted(dotted: str) -> str | None:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and not (module_name + ".").startswith(exc.name + "."):
                return f"importing {module_name} failed: {exc}"  # a real missing dependency, not a bad name
            continue
        for i, attr in enumerate(parts[cut:]):
            if not hasattr(obj, attr):
                return f"{'.'.join(parts[: cut + i])} has no attribute {attr!r}"
            obj = getattr(obj, attr)
        return None
    return f"no module {parts[0]!r}"


def references(page: Path) -> list[tuple[int, str, str | None]]:
    """(line, reference, problem or None) for every reference to a check or a kdref name on the page."""
    found: list[tuple[int, str, str | None]] = []
    for line, span in _spans(page):
        test_refs = list(_TEST_REF.finditer(span))
        for m in test_refs:
            found.append((line, m.group(0), _check_test_ref(m.group(1), m.group(2))))
        if test_refs:
            continue
        if m := _FILE_REF.match(span):
            found.append((line, span, None if (ROOT / m.group(1)).is_file() else f"{m.group(1)} does not exist"))
        elif m := _DOTTED.match(span):
            found.append((line, m.group(0), _check_dotted(m.group(0))))
    return found


def _is_check(ref: str) -> bool:
    return "::" in ref or ref.startswith("kdref.symbolic.")


def test_the_docs_have_pages_and_method_pages() -> None:
    assert len(METHOD_PAGES) >= 7, [p.name for p in METHOD_PAGES]
    assert DOCS / "index.md" in PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_named_check_exists(page: Path) -> None:
    bad = [f"{page.relative_to(ROOT)}:{line}: `{ref}`: {problem}" for line, ref, problem in references(page) if problem]
    assert not bad, "the page names checks or kdref names that do not exist:\n" + "\n".join(bad)


@pytest.mark.parametrize("page", METHOD_PAGES, ids=lambda p: p.stem)
def test_every_method_page_names_a_check(page: Path) -> None:
    checks = [ref for _, ref, _ in references(page) if _is_check(ref)]
    assert checks, f"{page.relative_to(ROOT)} names no test (path.py::test_name) and no kdref.symbolic proof"


def test_the_scanner_finds_what_the_pages_cite(tmp_path: Path) -> None:
    """The scanner itself: each form is recognised, and a missing name is reported, not silently skipped."""
    page = tmp_path / "page.md"
    page.write_text(
        "Proof: `kdref.symbolic.dkd.prove_decomposition` and `kdref.symbolic.dkd.prove_nothing_at_all`,\n"
        "test `tests/test_docs_references.py::test_the_scanner_finds_what_the_pages_cite[x]`,\n"
        "`tests/test_docs_references.py::no_such_test`, `tests/no_such_file.py::test_x`,\n"
        "``kdref/conformance/test_dkd.py::test_dkd_loss_agrees_with_reference``, `tests/official.py`,\n"
        '`kdref.presets.preset("dkd").total_loss(s)` and `mdistiller/distillers/DKD.py`.\n\n'
        "```python\nkdref.symbolic.dkd.not_checked_inside_fences\n```\n",
        encoding="utf-8",
    )
    got = {ref: problem for _, ref, problem in references(page)}
    assert set(got) == {
        "kdref.symbolic.dkd.prove_decomposition",
        "kdref.symbolic.dkd.prove_nothing_at_all",
        "tests/test_docs_references.py::test_the_scanner_finds_what_the_pages_cite[x]",
        "tests/test_docs_references.py::no_such_test",
        "tests/no_such_file.py::test_x",
        "kdref/conformance/test_dkd.py::test_dkd_loss_agrees_with_reference",
        "tests/official.py",
        "kdref.presets.preset",
    }
    bad = {ref for ref, problem in got.items() if problem}
    assert bad == {
        "kdref.symbolic.dkd.prove_nothing_at_all",
        "tests/test_docs_references.py::no_such_test",
        "tests/no_such_file.py::test_x",
    }
