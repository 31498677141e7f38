"""Hypothesis profiles: "kdref-fast" (deterministic, for CI and `kdref check`), "kdref-thorough" (releases) and
"kdref-smoke" (5 examples, a first look)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "kdref-fast", max_examples=20, derandomize=True, print_blob=True, deadline=None, suppress_health_check=_SUPPRESS
)
settings.register_profile(
    "kdref-smoke", max_examples=5, derandomize=True, print_blob=True, deadline=None, suppress_health_check=_SUPPRESS
)
settings.register_profile(
    "kdref-thorough", max_examples=500, print_blob=True, deadline=None, suppress_health_check=_SUPPRESS
)

PROFILES = ("kdref-smoke", "kdref-fast", "kdref-thorough")
DEFAULT_PROFILE = "kdref-fast"


def load_for(config: object) -> None:
    """Load the profile named by ``--hypothesis-profile``, else $KDREF_HYPOTHESIS_PROFILE, else the fast one."""
    import os

    chosen = None
    try:
        chosen = config.getoption("hypothesis_profile")  # type: ignore[attr-defined]
    except (ValueError, AttributeError):
        pass
    if chosen is None:
        settings.load_profile(os.environ.get("KDREF_HYPOTHESIS_PROFILE", DEFAULT_PROFILE))
