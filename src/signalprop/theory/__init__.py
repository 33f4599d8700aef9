"""Signal-propagation theory: Gaussian expectations and mean-field maps for deep networks."""

from ._gaussian import expect, expect_pair, gauss_nodes
from ._meanfield import (
    MeanField,
    Prediction,
    analyse,
    chi1,
    correlation_map,
    critical_sigma_w2,
    fixed_point_c,
    fixed_point_q,
    length_map,
    predict,
)

__all__ = [
    "MeanField",
    "Prediction",
    "analyse",
    "chi1",
    "correlation_map",
    "critical_sigma_w2",
    "expect",
    "expect_pair",
    "fixed_point_c",
    "fixed_point_q",
    "gauss_nodes",
    "length_map",
    "predict",
]
