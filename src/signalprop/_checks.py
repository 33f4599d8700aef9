"""Argument checks shared by the public API: each error names the parameter and what it accepts."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def choice(param: str, value: object, allowed: Iterable[str]) -> str:
    """Return ``value`` lower-cased if it is one of ``allowed`` (case-insensitive), else raise."""
    allowed = tuple(allowed)
    if not isinstance(value, str):
        raise TypeError(f"{param} must be a string, one of {', '.join(allowed)}; got {type(value).__name__}")
    key = value.lower()
    if key not in allowed:
        raise ValueError(f"unknown {param} {value!r}; allowed: {', '.join(allowed)}")
    return key


def non_negative(param: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite real number >= 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{param} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{param} must be finite and >= 0, got {value}")
    return value


def finite(param: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite real number, else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{param} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{param} must be finite, got {value}")
    return value


def floating_tensor(tensor: object, param: str = "tensor") -> torch.Tensor:
    """Raise unless ``tensor`` is a real floating-point tensor."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{param} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.dtype.is_floating_point:
        raise TypeError(
            f"{param} has dtype {tensor.dtype}; initializers fill real floating-point tensors "
            "(float16, bfloat16, float32, float64)"
        )
    return tensor


def generator_matches(generator: torch.Generator | None, tensor: torch.Tensor, param: str = "generator") -> None:
    """Raise if ``generator`` lives on another device type than ``tensor`` (meta tensors accept any)."""
    if generator is None or tensor.is_meta:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{param} must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != tensor.device.type:
        raise ValueError(f"{param} is on {generator.device.type} but the tensor is on {tensor.device.type}")
