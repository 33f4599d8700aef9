"""Initialization: variance-scaling initializers, layer-aware fans, and whole-model init.

Functions ending in ``_`` fill a tensor in place and return it, like ``torch.nn.init``.
"""

from ._fans import Fans, fans
from ._initializers import (
    DISTRIBUTIONS,
    MODES,
    TRUNCATED_NORMAL_STD,
    constant_,
    kaiming_normal_,
    kaiming_uniform_,
    lecun_normal_,
    lecun_uniform_,
    normal_,
    ones_,
    orthogonal_,
    variance_scaling_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)
from ._lsuv import LSUVLayer, LSUVReport, lsuv_
from ._model import InitReport, ParamInit, init_model
from ._schemes import SCHEMES

__all__ = [
    "DISTRIBUTIONS",
    "MODES",
    "SCHEMES",
    "TRUNCATED_NORMAL_STD",
    "Fans",
    "InitReport",
    "LSUVLayer",
    "LSUVReport",
    "ParamInit",
    "constant_",
    "fans",
    "init_model",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "lsuv_",
    "normal_",
    "ones_",
    "orthogonal_",
    "variance_scaling_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
