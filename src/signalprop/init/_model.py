"""``init_model``: one call that initializes every layer of a model with layer-aware fans."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import choice, floating_tensor, generator_matches
from .._moments import population_mean_std
from .._select import Selector, as_selectors, matches
from .._table import format_table
from ._fans import Fans, _module_fans
from ..activations import gain as activation_gain
from ._schemes import Scheme, parse_scheme

__all__ = ["init_model", "InitReport", "ParamInit"]

_NORM_LAYERS: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, InstanceNorm*, SyncBatchNorm
    nn.LayerNorm,
    nn.GroupNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
_KNOWN_LAYERS: tuple[type, ...] = (
    nn.Linear,
    nn.Bilinear,
    nn.modules.conv._ConvNd,
    nn.RNNBase,
    nn.RNNCellBase,
    nn.MultiheadAttention,
    nn.Embedding,
    nn.EmbeddingBag,
)
NORMALIZATION = ("reset", "keep")


@dataclass(frozen=True)
class ParamInit:
    """What ``init_model`` did to one parameter.

    ``scheme`` is the scheme's label, or ``"kept: <why>"`` for a parameter left unchanged;
    ``target_std`` is what the scheme aims for, ``drawn_std`` the std of the values actually written.
    """

    name: str
    shape: tuple[int, ...]
    scheme: str
    fans: Fans | None = None
    target_std: float | None = None
    drawn_std: float | None = None

    @property
    def kept(self) -> bool:
        return self.scheme.startswith("kept")

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "scheme": self.scheme,
            "fans": None if self.fans is None else self.fans.as_dict(),
            "target_std": self.target_std,
            "drawn_std": self.drawn_std,
        }


@dataclass(frozen=True)
class InitReport:
    """Per-parameter record of an ``init_model`` call, in module order."""

    params: tuple[ParamInit, ...]

    @property
    def unknown(self) -> tuple[str, ...]:
        """Parameters of layers ``init_model`` does not know, left unchanged."""
        return tuple(p.name for p in self.params if p.scheme == "kept: unknown layer")

    def __getitem__(self, name: str) -> ParamInit:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def table(self) -> str:
        """A fixed-width text table: name, shape, fans, scheme, target std, drawn std."""

        def num(x):
            return "" if x is None else f"{x:.4g}"

        rows = [
            [
                p.name,
                "×".join(map(str, p.shape)),
                "" if p.fans is None else str(p.fans.fan_in),
                "" if p.fans is None else str(p.fans.fan_out),
                "" if p.fans is None or p.fans.blocks == 1 else str(p.fans.blocks),
                p.scheme,
                num(p.target_std),
                num(p.drawn_std),
            ]
            for p in self.params
        ]
        header = ["parameter", "shape", "fan_in", "fan_out", "blocks", "scheme", "target std", "drawn std"]
        return format_table(header, rows, align="llrrrlrr")

    __str__ = table

    def to_dict(self) -> dict:
        return {"params": [p.as_dict() for p in self.params], "unknown": list(self.unknown)}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


@dataclass
class _Plan:
    name: str
    param: torch.Tensor
    scheme: Scheme | None  # None: keep
    reason: str = ""
    fans: Fans | None = None
    gain: float = 1.0


def _plan(model, weight, bias, activation, generator, include, exclude, normalization) -> list[_Plan]:
    weight_scheme = parse_scheme(weight, "weight")
    bias_scheme = parse_scheme(bias, "bias")
    normalization = choice("normalization", normalization, NORMALIZATION)
    includes = as_selectors(include, "include")
    excludes = as_selectors(exclude, "exclude")
    ones, zeros = parse_scheme("ones"), parse_scheme("zeros")
    gain_from_activation = None if activation is None else activation_gain(activation)

    plans: list[_Plan] = []
    seen: dict[int, str] = {}
    for prefix, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            name = f"{prefix}.{pname}" if prefix else pname
            if isinstance(param, nn.parameter.UninitializedParameter):
                raise ValueError(f"{name} is not materialized yet (lazy module): run one forward pass first")
            if id(param) in seen:
                plans.append(_Plan(name, param, None, f"tied to {seen[id(param)]}"))
                continue
            seen[id(param)] = name
            if (includes is not None and not matches(includes, name, module)) or (
                excludes is not None and matches(excludes, name, module)
            ):
                plans.append(_Plan(name, param, None, "excluded"))
                continue
            if isinstance(module, _NORM_LAYERS):
                scheme = None if normalization == "keep" else (zeros if pname.startswith("bias") else ones)
                plans.append(_Plan(name, param, scheme, "normalization"))
                continue
            if not isinstance(module, _KNOWN_LAYERS):
                plans.append(_Plan(name, param, None, "unknown layer"))
                continue
            is_bias = pname.startswith("bias") or param.dim() < 2
            scheme = bias_scheme if is_bias else weight_scheme
            label = "bias" if is_bias else "weight"
            floating_tensor(param, name)
            generator_matches(generator, param)
            fans = None
            if scheme.uses_fans:
                if param.dim() < 2:
                    raise ValueError(
                        f"{label} scheme {scheme.name!r} needs fans, but {name} has shape {tuple(param.shape)}"
                    )
                fans = _module_fans(module, pname, param)
            gain = 1.0
            if scheme.uses_gain:
                gain = scheme.default_gain if gain_from_activation is None else gain_from_activation
            plans.append(_Plan(name, param, scheme, label, fans, gain))
    return plans


def _blocks(param: torch.Tensor, fans: Fans | None) -> list[torch.Tensor]:
    if fans is None or fans.blocks == 1:
        return [param]
    return list(param.chunk(fans.blocks, dim=0))


def _dry_run(plans: list[_Plan]) -> None:
    """Fill a tiny tensor of each (scheme, dtype, device) once, so kernel errors surface before mutation."""
    done = set()
    for p in plans:
        if p.scheme is None or p.param.is_meta:
            continue
        key = (p.scheme.name, p.param.dtype, p.param.device)
        if key in done:
            continue
        done.add(key)
        scratch = torch.empty((2, 2), dtype=p.param.dtype, device=p.param.device)
        probe_gen = torch.Generator(device=p.param.device)
        p.scheme.fill(scratch, Fans(2, 2), p.gain, p.scheme.arg, probe_gen)


# The drawn std of a large tensor is read off an evenly spaced sample of contiguous chunks: 2**18 values
# give it to a relative standard error of at most 1/sqrt(2·2**18) ≈ 0.14% (normal values; 0.09% for
# uniform), at a fixed cost instead of a full read, which would add ~3% to the init of a large model.
_SAMPLE_CHUNK = 4096
_SAMPLE_CHUNKS = 64


def _measured_values(param: torch.Tensor) -> torch.Tensor:
    """The values the drawn std is computed from: all of them, or 64 evenly spaced 4096-value chunks."""
    flat = param.detach().reshape(-1)
    chunks = flat.numel() // _SAMPLE_CHUNK
    if chunks <= 2 * _SAMPLE_CHUNKS:
        return flat
    step = chunks // _SAMPLE_CHUNKS
    grid = flat[: chunks * _SAMPLE_CHUNK].view(chunks, _SAMPLE_CHUNK)
    return grid[::step][:_SAMPLE_CHUNKS]


def _drawn_std(param: torch.Tensor) -> float | None:
    """Sample std of the values written (Bessel-corrected), from :func:`population_mean_std`.

    Tensors of more than ``2·64·4096`` values are measured on 64 evenly spaced chunks of 4096 values
    (2**18 values, a relative standard error of at most 0.14%), so measuring costs the same for any model
    size.
    """
    if param.is_meta or param.numel() < 2:
        return None
    values = _measured_values(param)
    n = values.numel()
    return float(population_mean_std(values)[1]) * math.sqrt(n / (n - 1))


@torch.no_grad()
def init_model(
    model: nn.Module,
    weight: str | Scheme = "xavier_uniform",
    bias: str | Scheme = "zeros",
    *,
    activation: str | nn.Module | None = None,
    generator: torch.Generator | None = None,
    include: Selector | Iterable[Selector] | None = None,
    exclude: Selector | Iterable[Selector] | None = None,
    normalization: str = "reset",
    measure: bool = True,
) -> InitReport:
    """Initialize every parameterised layer of ``model`` in place; return what was done.

    Known layers (Linear, Bilinear, Conv*/ConvTranspose*, RNN/LSTM/GRU and cells, MultiheadAttention,
    Embedding/EmbeddingBag) get ``weight`` with their own fans (:func:`signalprop.init.fans`); fused
    weights (gate stacks, q/k/v) are filled block by block. Parameters named ``bias*`` and 1-D
    parameters get ``bias``. Normalization layers are reset to weight 1, bias 0
    (``normalization="keep"`` leaves them). Parameters of unknown layers are left unchanged, listed
    in ``InitReport.unknown`` and named in a warning. Tied parameters are filled once.

    Atomic: every parameter is checked (scheme, dtype, fans, generator device) and every
    (scheme, dtype, device) is tried on a scratch tensor before the first parameter is written; on any
    error nothing has changed.

    Args:
        model: the module to initialize.
        weight: scheme name for weights, e.g. ``"xavier_uniform"``, ``"kaiming_normal"``, ``"orthogonal"``,
            ``"normal:0.01"``, ``"constant:0.5"`` (see ``signalprop.init.SCHEMES``).
        bias: scheme name for biases (default ``"zeros"``).
        activation: the activation following the layers (name, module or callable); its forward gain
            ``1/sqrt(E[φ(z)²])`` scales Xavier/He/LeCun/orthogonal. Without it He uses ``√2`` (ReLU) and
            the others 1.
        generator: random generator (CPU generator for CPU parameters).
        include: only parameters matching one of these (name glob on the qualified parameter name,
            module type, or ``predicate(name, module)``); the others are kept.
        exclude: parameters matching one of these are kept.
        normalization: ``"reset"`` or ``"keep"`` for normalization layers.
        measure: record each parameter's drawn std (a read of every parameter up to 2**19 values, and of
            an evenly spaced 2**18-value sample of larger ones; ``False`` skips it).

    Returns:
        :class:`InitReport` with each parameter's name, shape, fans, scheme, target and drawn std.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    plans = _plan(model, weight, bias, activation, generator, include, exclude, normalization)
    _dry_run(plans)
    unknown = [p.name for p in plans if p.scheme is None and p.reason == "unknown layer"]
    if unknown:
        warnings.warn(
            f"init_model left {len(unknown)} parameter(s) of layers it does not know unchanged: "
            + ", ".join(unknown),
            stacklevel=2,
        )
    records = []
    for p in plans:
        shape = tuple(p.param.shape)
        if p.scheme is None:
            drawn = _drawn_std(p.param) if measure else None
            records.append(ParamInit(p.name, shape, f"kept: {p.reason}", None, None, drawn))
            continue
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "initializing a zero-element tensor")
            for block in _blocks(p.param, p.fans):
                p.scheme.fill(block, p.fans, p.gain, p.scheme.arg, generator)
        block_shape = tuple(_blocks(p.param, p.fans)[0].shape)
        target = p.scheme.std(block_shape, p.fans, p.gain, p.scheme.arg)
        drawn = _drawn_std(p.param) if measure else None
        records.append(ParamInit(p.name, shape, p.scheme.label, p.fans, target, drawn))
    return InitReport(tuple(records))
