"""Named initialization schemes, as ``init_model`` and the CLI take them.

A scheme name is case-insensitive and may carry one number after a colon: ``"normal:0.02"`` (the std),
``"constant:0.5"`` (the value). Gain-taking schemes (Xavier, He, LeCun, orthogonal) use the gain of the
model's activation when one is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from .._checks import choice, finite
from . import _initializers as ini
from ._fans import Fans

__all__ = ["Scheme", "SCHEMES", "parse_scheme"]


@dataclass(frozen=True)
class Scheme:
    """One way to fill a parameter.

    Attributes:
        name: canonical name.
        fill: ``fill(tensor, fans, gain, arg, generator)`` fills one block in place.
        std: ``std(shape, fans, gain, arg)`` the standard deviation the scheme targets for one block.
        uses_fans: whether the scheme needs a weight with fans (>= 2 dims).
        uses_gain: whether an activation's gain applies.
        default_gain: gain when no activation is given.
        arg: the number after the colon, if the scheme takes one.
    """

    name: str
    fill: Callable[..., torch.Tensor]
    std: Callable[..., float]
    uses_fans: bool
    uses_gain: bool = False
    default_gain: float = 1.0
    arg_name: str | None = None
    arg_default: float | None = None
    arg: float | None = None

    @property
    def label(self) -> str:
        return self.name if self.arg is None else f"{self.name}:{self.arg:g}"


def _vs(scale_of_gain: Callable[[float], float], mode: str, distribution: str) -> dict:
    def fill(tensor, fans, gain, arg, generator):
        return ini.variance_scaling_(tensor, scale_of_gain(gain), mode, distribution, fans=fans, generator=generator)

    def std(shape, fans, gain, arg):
        return ini.target_std(scale_of_gain(gain), fans, mode)

    return {"fill": fill, "std": std, "uses_fans": True}


def _squared(gain: float) -> float:
    return gain**2


def _orthogonal_std(shape, fans, gain: float, arg) -> float:
    # Frobenius² = gain²·min(r, c) spread over r·c entries: std = gain / sqrt(max(r, c)).
    rows = shape[0]
    cols = math.prod(shape) // rows
    return gain / math.sqrt(max(rows, cols))


_REGISTRY: dict[str, Scheme] = {}


def _register(name: str, *aliases: str, **fields) -> None:
    scheme = Scheme(name=name, **fields)
    for key in (name, *aliases):
        _REGISTRY[key] = scheme


_register("xavier_uniform", "glorot_uniform", uses_gain=True, **_vs(_squared, "fan_avg", "uniform"))
_register("xavier_normal", "glorot_normal", uses_gain=True, **_vs(_squared, "fan_avg", "normal"))
_register("kaiming_uniform", "he_uniform", uses_gain=True, default_gain=math.sqrt(2.0),
          **_vs(_squared, "fan_in", "uniform"))
_register("kaiming_normal", "he_normal", uses_gain=True, default_gain=math.sqrt(2.0),
          **_vs(_squared, "fan_in", "normal"))
_register("lecun_uniform", uses_gain=True, **_vs(_squared, "fan_in", "uniform"))
_register("lecun_normal", uses_gain=True, **_vs(_squared, "fan_in", "normal"))
# Glorot & Bengio's "standard" init U[-1/sqrt(fan_in), 1/sqrt(fan_in)], Var = 1/(3·fan_in);
# also the weight init of torch's Linear and Conv layers (whose biases are U[±1/sqrt(fan_in)] too).
_register("standard", **_vs(lambda gain: 1.0 / 3.0, "fan_in", "uniform"))
_register(
    "orthogonal",
    uses_gain=True,
    uses_fans=True,
    fill=lambda t, fans, gain, arg, generator: ini.orthogonal_(t, gain, generator=generator),
    std=_orthogonal_std,
)
_register(
    "normal",
    uses_fans=False,
    arg_name="std",
    arg_default=0.01,
    fill=lambda t, fans, gain, arg, generator: ini.normal_(t, arg, generator=generator),
    std=lambda shape, fans, gain, arg: arg,
)
_register(
    "constant",
    uses_fans=False,
    arg_name="value",
    fill=lambda t, fans, gain, arg, generator: ini.constant_(t, arg),
    std=lambda *_: 0.0,
)
_register("zeros", uses_fans=False, fill=lambda t, *_: ini.zeros_(t), std=lambda *_: 0.0)
_register("ones", uses_fans=False, fill=lambda t, *_: ini.ones_(t), std=lambda *_: 0.0)

SCHEMES: tuple[str, ...] = tuple(_REGISTRY)


def parse_scheme(spec: str | Scheme, param: str = "scheme") -> Scheme:
    """Turn ``"name"`` or ``"name:number"`` into a :class:`Scheme` with its argument bound."""
    if isinstance(spec, Scheme):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"{param} must be a scheme name, one of {', '.join(SCHEMES)}; got {type(spec).__name__}")
    name, sep, raw = spec.partition(":")
    scheme = _REGISTRY[choice(param, name.strip(), SCHEMES)]
    if not sep:
        if scheme.arg_name and scheme.arg_default is None:
            raise ValueError(f"{param} {scheme.name!r} needs a {scheme.arg_name}, e.g. '{scheme.name}:0.1'")
        arg = scheme.arg_default
    elif scheme.arg_name is None:
        raise ValueError(f"{param} {scheme.name!r} takes no argument, got {spec!r}")
    else:
        try:
            arg = float(raw)
        except ValueError:
            raise ValueError(f"{param} {spec!r}: {scheme.arg_name} must be a number, got {raw!r}") from None
        arg = finite(f"{param} {scheme.arg_name}", arg)
        if scheme.name == "normal" and arg < 0:
            raise ValueError(f"{param} {spec!r}: std must be >= 0")
    return replace(scheme, arg=arg)
