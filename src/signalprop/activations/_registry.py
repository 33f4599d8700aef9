"""Activation functions by name, as functions and as modules, with the points where they are not smooth.

Everywhere the library takes an activation it takes a registered name (case-insensitive, parameters
after a colon: ``"leaky_relu:0.2"``), an ``nn.Module`` (torch's activations are recognised with their
parameters, others are used as black boxes), or any callable on tensors. :func:`resolve` turns each into
an :class:`Activation`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import choice, finite

__all__ = ["Activation", "ScaledSigmoid", "scaled_sigmoid", "NAMES", "get", "resolve"]


def scaled_sigmoid(x: torch.Tensor) -> torch.Tensor:
    r"""``4·sigmoid(x) − 2``, the seed's repaired sigmoid: ``β = 0`` and ``α = 1`` at the origin.

    It equals ``2·tanh(x/2)`` (since ``tanh(y) = 2·sigmoid(2y) − 1``), so its Taylor series is
    ``x − x³/12 + O(x⁵)`` and it saturates at ±2. It is computed in that form: ``4·sigmoid(x) − 2``
    cancels catastrophically near 0 (in float32 it is exactly 0 for ``|x| < 3e-8``, where
    ``sigmoid(x)`` rounds to 1/2), which would end a small signal that the function itself preserves.
    """
    return 2.0 * torch.tanh(0.5 * x)


class ScaledSigmoid(nn.Module):
    """Module form of :func:`scaled_sigmoid`: ``4·sigmoid(x) − 2 = 2·tanh(x/2)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scaled_sigmoid(x)


class _CallableModule(nn.Module):
    """Wraps a callable on tensors as a module (for activations that are plain functions)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str):
        super().__init__()
        self.fn = fn
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


@dataclass(frozen=True)
class Activation:
    """An activation ``φ`` with what the analysis needs to know about it.

    Attributes:
        name: display name, e.g. ``"leaky_relu(0.2)"``.
        fn: ``φ`` on tensors, elementwise.
        kinks: points where ``φ`` or one of its derivatives jumps (quadrature splits there; Taylor
            expansions do not exist there).
        make_module: builds a fresh ``nn.Module`` computing ``φ``.
        torch_gain: ``(nonlinearity, param)`` for ``torch.nn.init.calculate_gain`` when it knows ``φ``.
        closed_form: the slope ``a`` when ``φ`` is ``x ↦ x`` for ``x ≥ 0`` and ``a·x`` below (identity,
            relu, leaky relu), for which the gains have closed forms.
        bounds: ``(low, high)`` for a saturating activation (tanh, sigmoid, …), else ``None``.
        spec: the string :func:`get` turns back into this activation (``None`` for callables).
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)
    kinks: tuple[float, ...] = ()
    make_module: Callable[[], nn.Module] | None = field(default=None, repr=False)
    torch_gain: tuple[str, float | None] | None = None
    closed_form: float | None = None
    bounds: tuple[float, float] | None = None
    spec: str | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def module(self) -> nn.Module:
        """A fresh ``nn.Module`` computing this activation."""
        if self.make_module is not None:
            return self.make_module()
        return _CallableModule(self.fn, self.name)


def _identity(**_):
    return Activation("identity", lambda x: x, (), nn.Identity, ("linear", None), 1.0)


def _relu(**_):
    return Activation("relu", F.relu, (0.0,), nn.ReLU, ("relu", None), 0.0)


def _leaky_relu(negative_slope: float = 0.01):
    s = finite("negative_slope", negative_slope)
    return Activation(f"leaky_relu({s:g})", lambda x: F.leaky_relu(x, s), (0.0,),
                      lambda: nn.LeakyReLU(s), ("leaky_relu", s), s)


def _elu(alpha: float = 1.0):
    a = finite("alpha", alpha)
    # ELU's second derivative jumps at 0 (α vs 0) even when α = 1 makes the first continuous.
    return Activation(f"elu({a:g})", lambda x: F.elu(x, a), (0.0,), lambda: nn.ELU(a))


def _selu(**_):
    return Activation("selu", F.selu, (0.0,), nn.SELU, ("selu", None))


def _gelu(**_):
    return Activation("gelu", F.gelu, (), nn.GELU)


def _gelu_tanh(**_):
    return Activation("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), (),
                      lambda: nn.GELU(approximate="tanh"))


def _silu(**_):
    return Activation("silu", F.silu, (), nn.SiLU)


def _mish(**_):
    return Activation("mish", F.mish, (), nn.Mish)


def _softplus(beta: float = 1.0, threshold: float = 20.0):
    b = finite("beta", beta)
    t = finite("threshold", threshold)
    if b <= 0:
        raise ValueError(f"softplus beta must be > 0, got {b}")
    # nn.Softplus is exactly linear above x·β > threshold: a (tiny) kink at threshold/β.
    return Activation(f"softplus({b:g})", lambda x: F.softplus(x, b, t), (t / b,),
                      lambda: nn.Softplus(b, t))


def _softsign(**_):
    return Activation("softsign", F.softsign, (), nn.Softsign, bounds=(-1.0, 1.0))


def _tanh(**_):
    return Activation("tanh", torch.tanh, (), nn.Tanh, ("tanh", None), bounds=(-1.0, 1.0))


def _sigmoid(**_):
    return Activation("sigmoid", torch.sigmoid, (), nn.Sigmoid, ("sigmoid", None), bounds=(0.0, 1.0))


def _scaled_sigmoid(**_):
    return Activation("scaled_sigmoid", scaled_sigmoid, (), ScaledSigmoid, bounds=(-2.0, 2.0))


def _hardtanh(min_val: float = -1.0, max_val: float = 1.0):
    lo, hi = finite("min_val", min_val), finite("max_val", max_val)
    if not lo < hi:
        raise ValueError(f"hardtanh needs min_val < max_val, got {lo} and {hi}")
    return Activation(f"hardtanh({lo:g}, {hi:g})", lambda x: F.hardtanh(x, lo, hi), (lo, hi),
                      lambda: nn.Hardtanh(lo, hi), bounds=(lo, hi))


_FACTORIES: dict[str, Callable[..., Activation]] = {
    "identity": _identity,
    "linear": _identity,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "selu": _selu,
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
    "silu": _silu,
    "swish": _silu,
    "mish": _mish,
    "softplus": _softplus,
    "softsign": _softsign,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
    "scaled_sigmoid": _scaled_sigmoid,
    "hardtanh": _hardtanh,
}
NAMES: tuple[str, ...] = tuple(_FACTORIES)


def get(name: str, *args: float, **params: float) -> Activation:
    """The registered activation ``name`` (case-insensitive), e.g. ``get("leaky_relu", 0.2)``.

    ``name`` may carry its numeric parameters after colons: ``"leaky_relu:0.2"``, ``"hardtanh:-2:2"``.
    """
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a string, got {type(name).__name__}")
    base, *raw = name.split(":")
    key = choice("activation", base.strip(), NAMES)
    try:
        numbers = [float(r) for r in raw]
    except ValueError:
        raise ValueError(f"activation {name!r}: parameters after ':' must be numbers") from None
    try:
        act = _FACTORIES[key](*numbers, *args, **params)
    except TypeError as err:
        raise TypeError(f"activation {key!r}: {err}") from None
    return _with_spec(act)


def _with_spec(act: Activation) -> Activation:
    """Attach the ``get`` string: ``leaky_relu(0.2)`` → ``leaky_relu:0.2``."""
    base, _, params = act.name.partition("(")
    spec = base if not params else base + ":" + ":".join(p.strip() for p in params.rstrip(")").split(","))
    return replace(act, spec=spec)


def from_module(module: nn.Module) -> Activation | None:
    """Recognise torch's activation modules with their parameters (None for others)."""
    act = _from_module(module)
    return None if act is None else _with_spec(act)


def _from_module(module: nn.Module) -> Activation | None:
    # Order matters: ReLU6 is a Hardtanh; GELU carries its approximation.
    if isinstance(module, nn.Identity):
        return _identity()
    if isinstance(module, nn.ReLU):
        return _relu()
    if isinstance(module, nn.LeakyReLU):
        return _leaky_relu(module.negative_slope)
    if isinstance(module, nn.Hardtanh):
        return _hardtanh(module.min_val, module.max_val)
    if isinstance(module, nn.ELU):
        return _elu(module.alpha)
    if isinstance(module, nn.GELU):
        return _gelu_tanh() if module.approximate == "tanh" else _gelu()
    if isinstance(module, nn.Softplus):
        return _softplus(module.beta, module.threshold)
    simple = {nn.SELU: _selu, nn.SiLU: _silu, nn.Mish: _mish, nn.Softsign: _softsign, nn.Tanh: _tanh,
              nn.Sigmoid: _sigmoid, ScaledSigmoid: _scaled_sigmoid}
    factory = simple.get(type(module))
    return factory() if factory else None


def _callable_name(fn: object) -> str:
    if isinstance(fn, nn.Module):
        return type(fn).__name__
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def resolve(activation: str | nn.Module | Callable | Activation, *, kinks: tuple[float, ...] = ()) -> Activation:
    """Turn a name, a module or a callable into an :class:`Activation`.

    A callable that is not a known torch activation is treated as smooth unless ``kinks`` names the
    points where it is not; give them, or quadratures near those points lose accuracy.
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        return get(activation)
    if isinstance(activation, nn.Module):
        known = from_module(activation)
        if known is not None:
            return known
    if not callable(activation):
        raise TypeError(
            f"activation must be a name ({', '.join(NAMES)}), an nn.Module or a callable on tensors; "
            f"got {type(activation).__name__}"
        )
    kinks = tuple(finite("kinks", k) for k in kinks)
    return Activation(_callable_name(activation), activation, kinks)


def evaluate(act: Activation, x: torch.Tensor, what: str = "values") -> torch.Tensor:
    """``act(x)`` with clear errors: a callable that rejects tensors, changes shape, or returns NaN/Inf."""
    try:
        y = act.fn(x)
    except Exception as err:  # noqa: BLE001 - any failure of a user callable is reported by name
        raise TypeError(f"activation {act.name} failed on a float64 tensor: {type(err).__name__}: {err}") from err
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise TypeError(f"activation {act.name} must map a tensor to a tensor of the same shape (elementwise)")
    if not torch.isfinite(y).all():
        bad = x[~torch.isfinite(y)]
        raise ValueError(
            f"activation {act.name} returned NaN/Inf {what} at {bad.numel()} quadrature node(s), e.g. x = {bad[0].item():.4g}"
        )
    return y


def derivative(act: Activation, x: torch.Tensor) -> torch.Tensor:
    """``φ'(x)`` elementwise by autograd in the dtype of ``x`` (use float64)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = evaluate(act, x)
        if not y.requires_grad:
            return torch.zeros_like(x)
        (g,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    if g is None:
        return torch.zeros_like(x)
    if not torch.isfinite(g).all():
        raise ValueError(f"activation {act.name} has a NaN/Inf derivative at some quadrature node")
    return g.detach()

