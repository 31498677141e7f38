"""Placeholder: filled by the dist method work."""

__all__: list[str] = []
