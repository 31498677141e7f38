"""End-to-end validation of the papers' claims at small scale (``python -m validation.run``)."""
