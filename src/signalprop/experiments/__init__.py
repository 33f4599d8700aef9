"""Reproducible experiments: the seed's claims and the published results, each writing results.json, a
markdown table and figures. ``signalprop experiment list`` / ``signalprop experiment run NAME``."""

# Imported in the order `signalprop experiment list` shows them; importing registers each.
from . import d2l, init_vs_depth, scaled_sigmoid, symmetry  # noqa: F401  isort: skip
from . import glorot2010, he2015, trainability, levers, clipping  # noqa: F401  isort: skip
from ._registry import Experiment, experiments, get, run

__all__ = ["Experiment", "experiments", "get", "run"]
