"""Declared validation experiments: see :mod:`validation.configs.experiments`."""

from .experiments import EXPERIMENTS, Arm, Experiment

__all__ = ["EXPERIMENTS", "Arm", "Experiment"]
