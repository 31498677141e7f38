"""The property suite, written once against an implementation under test (see ``_impl``).

Run it against kdref's own tiers with ``pytest --pyargs kdref.conformance`` or ``kdref check``; against your own
implementation with ``--kdref-impl=MODULE``, ``kdref check MODULE``, or ``parametrize_with_checks`` in a test file.
"""

from ._impl import Implementation, NumpyImplementation, TorchImplementation, kdref_implementations
from .checks import as_implementations, parametrize_with_checks, properties

__all__ = [
    "Implementation",
    "NumpyImplementation",
    "TorchImplementation",
    "as_implementations",
    "kdref_implementations",
    "parametrize_with_checks",
    "properties",
]
