"""Placeholder: filled by the deit method work."""

__all__: list[str] = []
