"""Runs every property against each implementation under test (by default kdref's own tiers)."""

from __future__ import annotations

import pytest

from . import profiles
from ._impl import kdref_implementations


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kdref(kind, functions): a conformance property of these contract functions")
    profiles.load_for(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        impls = kdref_implementations()
        metafunc.parametrize("impl", impls, ids=[i.id for i in impls])
