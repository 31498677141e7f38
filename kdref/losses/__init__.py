"""The PyTorch tier: the losses to import into training code (any device, float64/32/bfloat16/float16)."""

from . import deit, dist, dkd, funmatch, hinton, modules, simkd
from ._ops import set_value_checks
from .deit import *  # noqa: F403
from .dist import *  # noqa: F403
from .dkd import *  # noqa: F403
from .funmatch import *  # noqa: F403
from .hinton import *  # noqa: F403
from .modules import *  # noqa: F403
from .simkd import *  # noqa: F403

__all__ = [
    "set_value_checks",
    *(name for module in (hinton, dkd, dist, deit, funmatch, simkd, modules) for name in module.__all__),
]
