"""The property suite, written once against an implementation under test (see ``_impl``).

Run it against kdref's own tiers with ``pytest --pyargs kdref.conformance`` or ``kdref check``.
"""

from ._impl import Implementation, NumpyImplementation, TorchImplementation, kdref_implementations

__all__ = ["Implementation", "NumpyImplementation", "TorchImplementation", "kdref_implementations"]
