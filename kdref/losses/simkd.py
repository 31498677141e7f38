"""Placeholder: filled by the simkd method work."""

__all__: list[str] = []
