"""kdref: the verified reference for knowledge-distillation losses.

``from kdref import dkd_loss`` gives the PyTorch losses; ``kdref.reference`` the NumPy float64 tier;
``kdref.symbolic`` the SymPy proofs and the mpmath oracle; ``kdref.conformance`` the property suite.
"""

from .losses import *  # noqa: F403
from .losses import __all__ as _losses_all

__version__ = "0.1.0"

__all__ = [*_losses_all, "__version__"]
