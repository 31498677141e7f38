"""Use the suite from your own test file: ``@parametrize_with_checks(my_module)`` and call ``check()``.

Example (a user's ``test_my_losses.py``)::

    import my_losses
    from kdref.conformance import parametrize_with_checks

    @parametrize_with_checks(my_losses, dtypes=("float32",))
    def test_conforms(check):
        check()
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from ._impl import Implementation, NumpyImplementation, TorchImplementation

_METHOD_MODULES = ("hinton", "dkd", "dist", "deit", "funmatch", "simkd")


def properties() -> Iterator[tuple[str, Callable[..., Any], Any]]:
    """(name, test function, kdref marker) for every property in the suite, method by method."""
    package = importlib.import_module("kdref.conformance")
    names = {m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("test_")}
    for method in _METHOD_MODULES:
        if f"test_{method}" not in names:
            continue
        module = importlib.import_module(f"kdref.conformance.test_{method}")
        for attr, fn in vars(module).items():
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "kdref"]
            if attr.startswith("test_") and callable(fn) and marks:
                yield attr, fn, marks[0]


def as_implementations(
    implementation: Any, *, array: str | None = None, dtypes: tuple[str, ...] | None = None, device: str = "cpu"
) -> list[Implementation]:
    """An Implementation, a module, a module name or a mapping of contract names to functions, in each dtype."""
    if isinstance(implementation, Implementation):
        return [implementation]
    if isinstance(implementation, str):
        implementation = importlib.import_module(implementation)
    ns: Any
    if isinstance(implementation, Mapping):
        name, ns = "functions", SimpleNamespace(**implementation)
    elif isinstance(implementation, ModuleType):
        name, ns = implementation.__name__, implementation
    else:
        name, ns = type(implementation).__name__, implementation
    array = array or getattr(ns, "KDREF_ARRAY", None) or "torch"
    if array == "numpy":
        return [NumpyImplementation(f"{name}[numpy,float64]", ns)]
    return [TorchImplementation(f"{name}[{device},{d}]", ns, d, device) for d in (dtypes or ("float64", "float32"))]


def parametrize_with_checks(
    implementation: Any, *, array: str | None = None, dtypes: tuple[str, ...] | None = None, device: str = "cpu"
) -> Any:
    """A ``pytest.mark.parametrize`` over every property × dtype: each parameter ``check`` runs one property."""
    params = []
    for impl in as_implementations(implementation, array=array, dtypes=dtypes, device=device):
        for name, fn, _ in properties():
            check = functools.partial(fn, impl=impl)
            params.append(pytest.param(check, id=f"{name.removeprefix('test_')}[{impl.id}]"))
    return pytest.mark.parametrize("check", params)
