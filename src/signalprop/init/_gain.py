"""Weight gains for activations with a closed form.

He et al. (2015): a layer followed by ``φ`` keeps the second moment of its pre-activations when
``Var[W] = gain² / fan_in`` with ``gain = 1 / sqrt(E[φ(z)²] / E[z²])``. For a ``φ`` that is linear on
each half-line with slopes 1 and ``a`` (leaky ReLU; ReLU is ``a = 0``; the identity is ``a = 1``),
``E[φ(z)²] = (1 + a²)/2 · E[z²]`` for symmetric ``z``, so ``gain = sqrt(2 / (1 + a²))``.
"""

from __future__ import annotations

import math

from torch import nn

from .._checks import choice, finite

__all__ = ["activation_gain"]

_LEAKY_DEFAULT = 0.01  # nn.LeakyReLU's default slope
_NAMES = ("linear", "identity", "relu", "leaky_relu")


def _piecewise_linear_gain(negative_slope: float) -> float:
    return math.sqrt(2.0 / (1 + negative_slope**2))


def activation_gain(activation: str | nn.Module, negative_slope: float | None = None) -> float:
    """Gain ``sqrt(2 / (1 + a²))`` for ``identity``/``linear`` (a = 1), ``relu`` (a = 0), ``leaky_relu``.

    Args:
        activation: a name (case-insensitive) or an ``nn.Identity``, ``nn.ReLU`` or ``nn.LeakyReLU``
            module (whose slope is used).
        negative_slope: the leaky ReLU slope when ``activation`` is the name ``"leaky_relu"``
            (default 0.01, as ``nn.LeakyReLU``).
    """
    if isinstance(activation, nn.Module):
        if isinstance(activation, nn.Identity):
            return 1.0
        if isinstance(activation, nn.ReLU):
            return math.sqrt(2.0)
        if isinstance(activation, nn.LeakyReLU):
            return _piecewise_linear_gain(activation.negative_slope)
        raise ValueError(
            f"no closed-form gain for activation module {type(activation).__name__}; "
            f"allowed: nn.Identity, nn.ReLU, nn.LeakyReLU or a name: {', '.join(_NAMES)}"
        )
    name = choice("activation", activation, _NAMES)
    if negative_slope is not None and name != "leaky_relu":
        raise ValueError(f"negative_slope only applies to leaky_relu, not {name}")
    if name in ("linear", "identity"):
        return 1.0
    if name == "relu":
        return math.sqrt(2.0)
    slope = _LEAKY_DEFAULT if negative_slope is None else finite("negative_slope", negative_slope)
    return _piecewise_linear_gain(slope)
