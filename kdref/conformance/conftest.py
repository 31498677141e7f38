"""Runs every property against each implementation under test: kdref's own tiers by default, or the one named
by ``--kdref-impl`` / ``--kdref-fn`` / $KDREF_IMPL / $KDREF_FN (options from :mod:`kdref.conformance.plugin`)."""

from __future__ import annotations

import pytest

from . import profiles
from .loading import Selection, implementations


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kdref(kind, functions): a conformance property of these contract functions")
    profiles.load_for(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        impls = implementations(Selection.from_config(metafunc.config))
        metafunc.parametrize("impl", impls, ids=[i.id for i in impls])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The suite sets its own warning filters: a user's `filterwarnings = error` must not turn a library's
    # deprecation notice into a conformance failure.
    for item in items:
        if item.get_closest_marker("kdref") is not None:
            item.add_marker(pytest.mark.filterwarnings("default"), append=False)
