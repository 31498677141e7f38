"""The pytest plugin (entry point ``pytest11``) that adds the options naming an implementation under test.

It must stay cheap: it is loaded in every pytest session of an environment where kdref is installed, so it
imports nothing heavy and only declares options; the conformance package's conftest reads them.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kdref", "kdref conformance suite")
    group.addoption(
        "--kdref-impl",
        metavar="MODULE",
        default=None,
        help="module whose contract functions are tested (default: kdref's own tiers); also $KDREF_IMPL",
    )
    group.addoption(
        "--kdref-fn",
        metavar="NAME=MODULE:ATTR",
        action="append",
        default=[],
        help="test one function, e.g. dkd_loss=mypkg.losses:dkd; repeatable; also $KDREF_FN (comma-separated)",
    )
    group.addoption(
        "--kdref-array",
        choices=("torch", "numpy"),
        default=None,
        help="the array library the implementation takes (default: the module's KDREF_ARRAY, else torch)",
    )
    group.addoption(
        "--kdref-dtype",
        metavar="DTYPES",
        default=None,
        help="comma-separated dtypes to test in (default: float64,float32 for torch, float64 for numpy)",
    )
    group.addoption("--kdref-device", metavar="DEVICE", default=None, help="torch device (default: cpu)")
