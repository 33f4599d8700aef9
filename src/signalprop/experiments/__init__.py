"""Reproducible experiments: the seed's claims and the published results, each writing results.json, a
markdown table and figures. ``signalprop experiment list`` / ``signalprop experiment run NAME``."""

from . import d2l, glorot2010, init_vs_depth, scaled_sigmoid, symmetry  # noqa: F401  (registers)
from ._registry import Experiment, experiments, get, run

__all__ = ["Experiment", "experiments", "get", "run"]
