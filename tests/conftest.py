"""Project tests share the conformance suite's Hypothesis profiles."""

from __future__ import annotations

import pytest

from kdref.conformance import profiles


def pytest_configure(config: pytest.Config) -> None:
    profiles.load_for(config)
