"""Symbolic tier: SymPy proofs and 50-digit mpmath oracles, one module per method."""

from . import _ops, deit, dist, dkd, funmatch, hinton, simkd

__all__ = ["_ops", "deit", "dist", "dkd", "funmatch", "hinton", "simkd"]
