"""Activations: a registry, Taylor expansions, the seed's linear-regime check, and computed gains."""

from ._analysis import LinearRegime, Taylor, linear_regime, normalize, normalizing_affine, taylor
from ._gain import CRITERIA, gain, moments
from ._registry import NAMES, Activation, ScaledSigmoid, get, resolve, scaled_sigmoid

__all__ = [
    "CRITERIA",
    "NAMES",
    "Activation",
    "LinearRegime",
    "ScaledSigmoid",
    "Taylor",
    "gain",
    "get",
    "linear_regime",
    "moments",
    "normalize",
    "normalizing_affine",
    "resolve",
    "scaled_sigmoid",
    "taylor",
]
