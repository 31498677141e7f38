"""The NumPy float64 tier: the losses written to read like the equations, with analytic gradients."""

from . import deit, dist, dkd, funmatch, hinton, simkd
from .deit import *  # noqa: F403
from .dist import *  # noqa: F403
from .dkd import *  # noqa: F403
from .funmatch import *  # noqa: F403
from .hinton import *  # noqa: F403
from .simkd import *  # noqa: F403

__all__ = [name for module in (hinton, dkd, dist, deit, funmatch, simkd) for name in module.__all__]
