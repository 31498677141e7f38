"""Placeholder: filled by the funmatch method work."""

__all__: list[str] = []
