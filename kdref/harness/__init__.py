"""The kdref training harness: distil a student from a teacher with any kdref method, on the embedded digits data,
a synthetic task or CIFAR, on CPU or CUDA, in one process or under ``torchrun``.

Needs the ``harness`` extra (scikit-learn for the digits, matplotlib for plots; tqdm optional)::

    kdref train --method dkd --data digits
    kdref demo
    torchrun --nproc-per-node 2 -m kdref.harness train --method dist --dist-intra global

The harness imports kdref's losses; kdref.losses, kdref.reference and kdref.symbolic never import the harness.
"""

from __future__ import annotations

from .data import Data, augment, load_cifar, load_data, load_digits, make_synthetic
from .methods import METHODS, Method, get_method
from .models import build_model
from .train import TrainConfig, train

__all__ = [
    "METHODS",
    "Data",
    "Method",
    "TrainConfig",
    "augment",
    "build_model",
    "get_method",
    "load_cifar",
    "load_data",
    "load_digits",
    "make_synthetic",
    "train",
]
