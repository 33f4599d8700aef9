"""In-place initializers in the ``torch.nn.init`` style.

Every function fills ``tensor`` in place under ``no_grad`` and returns it, draws from ``generator`` when
one is given (else from the global RNG), and leaves meta tensors alone. :func:`variance_scaling_` holds
the maths; Glorot/Xavier, He/Kaiming and LeCun are presets of it:

=================  ==========  ===========  =======================
preset             scale       mode         distribution
=================  ==========  ===========  =======================
xavier_uniform_    gain²       fan_avg      uniform
xavier_normal_     gain²       fan_avg      normal
kaiming_uniform_   gain² (2)   fan_in       uniform
kaiming_normal_    gain² (2)   fan_in       normal
lecun_uniform_     gain² (1)   fan_in       uniform
lecun_normal_      gain² (1)   fan_in       normal
=================  ==========  ===========  =======================

The standard deviation is computed with the same floating-point expression as ``torch.nn.init``
(``gain·sqrt(2/(fan_in+fan_out))`` and ``gain/sqrt(fan)``, with ``sqrt(gain²) == gain`` exactly in binary
floating point), so on a 2-D weight and the same generator state the presets are bit-identical to torch's.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from .._checks import choice, finite, floating_tensor, generator_matches, non_negative
from ._fans import Fans, tensor_fans
from ..activations import gain as activation_gain

__all__ = [
    "MODES",
    "DISTRIBUTIONS",
    "variance_scaling_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "lecun_uniform_",
    "lecun_normal_",
    "orthogonal_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
]

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")

# Std of a standard normal truncated to (-2, 2): sqrt(1 - 4·φ(2) / (Φ(2) - Φ(-2))).
TRUNCATED_NORMAL_STD = 0.87962566103423978
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _is_empty(tensor: torch.Tensor) -> bool:
    if tensor.numel() == 0:
        warnings.warn(
            f"initializing a zero-element tensor of shape {tuple(tensor.shape)} is a no-op", stacklevel=3
        )
        return True
    return False


def _resolve_fans(tensor: torch.Tensor, fans: Fans | tuple[int, int] | None) -> Fans:
    if fans is None:
        return tensor_fans(tensor)
    if isinstance(fans, Fans):
        fan_in, fan_out = fans.fan_in, fans.fan_out
    else:
        try:
            fan_in, fan_out = fans
        except (TypeError, ValueError):
            raise TypeError(f"fans must be a Fans or a (fan_in, fan_out) pair, got {fans!r}") from None
    for label, n in (("fan_in", fan_in), ("fan_out", fan_out)):
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not n > 0 or not math.isfinite(n):
            raise ValueError(f"fans.{label} must be a positive number, got {n!r}")
    return fans if isinstance(fans, Fans) else Fans(fan_in, fan_out, rule="given")


def target_std(scale: float, fans: Fans, mode: str) -> float:
    """``sqrt(scale / n)`` with ``n`` = fan_in, fan_out or (fan_in + fan_out)/2, in torch's rounding."""
    if mode == "fan_avg":
        return math.sqrt(scale) * math.sqrt(2.0 / float(fans.fan_in + fans.fan_out))
    n = fans.fan_in if mode == "fan_in" else fans.fan_out
    return math.sqrt(scale) / math.sqrt(n)


def _truncated_normal(tensor: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    # Inverse-CDF sampling: u ~ U(erf(-2/√2), erf(2/√2)), x = √2·std·erfinv(u), exact on ±2 std.
    edge = math.erf(2.0 / math.sqrt(2.0))
    tensor.uniform_(-edge, edge, generator=generator)
    tensor.erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-2.0 * std, 2.0 * std)


def _fill(tensor: torch.Tensor, std: float, distribution: str, generator: torch.Generator | None) -> None:
    if distribution == "normal":
        tensor.normal_(0.0, std, generator=generator)
    elif distribution == "uniform":
        bound = math.sqrt(3.0) * std  # Var U[-a, a] = a²/3
        tensor.uniform_(-bound, bound, generator=generator)
    elif tensor.dtype in _LOW_PRECISION:  # erfinv near ±1 needs float32 resolution
        work = torch.empty(tensor.shape, dtype=torch.float32, device=tensor.device)
        _truncated_normal(work, std / TRUNCATED_NORMAL_STD, generator)
        tensor.copy_(work)
    else:
        _truncated_normal(tensor, std / TRUNCATED_NORMAL_STD, generator)


@torch.no_grad()
def variance_scaling_(
    tensor: torch.Tensor,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    *,
    fans: Fans | tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` with zero-mean values of variance ``scale / n``.

    .. math:: \mathrm{Var}[W] = \frac{\text{scale}}{n},\quad n \in \{n_\text{in},\ n_\text{out},\
              (n_\text{in} + n_\text{out})/2\}

    ``normal`` draws ``N(0, scale/n)``; ``uniform`` draws ``U[-a, a]`` with ``a = sqrt(3·scale/n)``;
    ``truncated_normal`` draws a normal truncated at ±2σ whose σ is divided by 0.87962566103423978 so
    the variance is still ``scale/n`` (as Keras and JAX do).

    Args:
        tensor: floating-point tensor with at least 2 dims (unless ``fans`` is given).
        scale: the variance multiplier, ``gain²``.
        mode: ``fan_in`` (keeps forward variance), ``fan_out`` (keeps backward variance) or ``fan_avg``.
        distribution: ``normal``, ``truncated_normal`` or ``uniform``.
        fans: fans to use instead of torch's tensor rule (:func:`signalprop.init.fans` of a layer).
        generator: the random generator to draw from.

    Returns:
        ``tensor``, filled.

    References:
        Glorot & Bengio (2010); He et al. (2015); LeCun et al. (1998). Also known as JAX/Keras
        ``variance_scaling``.
    """
    mode = choice("mode", mode, MODES)
    distribution = choice("distribution", distribution, DISTRIBUTIONS)
    scale = non_negative("scale", scale)
    floating_tensor(tensor)
    generator_matches(generator, tensor)
    resolved = _resolve_fans(tensor, fans)
    if _is_empty(tensor) or tensor.is_meta:
        return tensor
    _fill(tensor, target_std(scale, resolved, mode), distribution, generator)
    return tensor


def _gain(gain: float) -> float:
    return non_negative("gain", gain)


def xavier_uniform_(tensor, gain=1.0, *, fans=None, generator=None):
    r"""Glorot/Xavier uniform: ``U[-a, a]``, ``a = gain·sqrt(6 / (fan_in + fan_out))``.

    Keeps ``Var[W] = gain²·2/(fan_in + fan_out)``, Glorot's compromise between the forward condition
    ``fan_in·Var[W] = 1`` and the backward condition ``fan_out·Var[W] = 1``. Preset of
    ``variance_scaling_(tensor, gain², "fan_avg", "uniform")``. Bit-identical to
    ``torch.nn.init.xavier_uniform_`` on a 2-D weight.

    References: Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward
    neural networks". Also known as ``glorot_uniform``.
    """
    return variance_scaling_(tensor, _gain(gain) ** 2, "fan_avg", "uniform", fans=fans, generator=generator)


def xavier_normal_(tensor, gain=1.0, *, fans=None, generator=None):
    r"""Glorot/Xavier normal: ``N(0, σ²)``, ``σ = gain·sqrt(2 / (fan_in + fan_out))``.

    Preset of ``variance_scaling_(tensor, gain², "fan_avg", "normal")``; bit-identical to
    ``torch.nn.init.xavier_normal_`` on a 2-D weight. References: Glorot & Bengio (2010).
    Also known as ``glorot_normal``.
    """
    return variance_scaling_(tensor, _gain(gain) ** 2, "fan_avg", "normal", fans=fans, generator=generator)


def _kaiming_gain(gain, activation) -> float:
    if gain is not None and activation is not None:
        raise ValueError("give either gain or activation, not both")
    if activation is not None:
        return activation_gain(activation, "forward")
    return math.sqrt(2.0) if gain is None else _gain(gain)


def kaiming_uniform_(tensor, gain=None, *, activation=None, mode="fan_in", fans=None, generator=None):
    r"""He/Kaiming uniform: ``U[-a, a]``, ``a = gain·sqrt(3 / fan)``, default ``gain = √2`` (ReLU).

    ``activation`` (a name, module or callable) sets the gain to its forward gain
    ``1/sqrt(E[φ(z)²])`` instead (:func:`signalprop.activations.gain`; ``sqrt(2/(1 + slope²))`` for
    relu and leaky relu). Preset of ``variance_scaling_(tensor, gain², mode, "uniform")``;
    bit-identical to ``torch.nn.init.kaiming_uniform_`` with the same gain on a 2-D weight.

    References: He et al. (2015), "Delving deep into rectifiers". Also known as ``he_uniform``.
    """
    scale = _kaiming_gain(gain, activation) ** 2
    return variance_scaling_(tensor, scale, mode, "uniform", fans=fans, generator=generator)


def kaiming_normal_(tensor, gain=None, *, activation=None, mode="fan_in", fans=None, generator=None):
    r"""He/Kaiming normal: ``N(0, σ²)``, ``σ = gain / sqrt(fan)``, default ``gain = √2`` (ReLU).

    Preset of ``variance_scaling_(tensor, gain², mode, "normal")``; bit-identical to
    ``torch.nn.init.kaiming_normal_`` with the same gain on a 2-D weight.
    References: He et al. (2015). Also known as ``he_normal``.
    """
    scale = _kaiming_gain(gain, activation) ** 2
    return variance_scaling_(tensor, scale, mode, "normal", fans=fans, generator=generator)


def lecun_uniform_(tensor, gain=1.0, *, fans=None, generator=None):
    r"""LeCun uniform: ``U[-a, a]``, ``a = gain·sqrt(3 / fan_in)``, i.e. ``Var[W] = gain²/fan_in``.

    Preset of ``variance_scaling_(tensor, gain², "fan_in", "uniform")``. With ``gain = 1`` it keeps
    the forward variance of a linear layer; it is the init SELU's self-normalisation assumes.
    References: LeCun et al. (1998), "Efficient BackProp"; Klambauer et al. (2017).
    """
    return variance_scaling_(tensor, _gain(gain) ** 2, "fan_in", "uniform", fans=fans, generator=generator)


def lecun_normal_(tensor, gain=1.0, *, fans=None, generator=None):
    r"""LeCun normal: ``N(0, gain²/fan_in)``.

    Preset of ``variance_scaling_(tensor, gain², "fan_in", "normal")``: a plain normal, like this
    library's other ``*_normal_``; JAX's ``lecun_normal`` is the ``"truncated_normal"`` variant.
    References: LeCun et al. (1998); Klambauer et al. (2017).
    """
    return variance_scaling_(tensor, _gain(gain) ** 2, "fan_in", "normal", fans=fans, generator=generator)


@torch.no_grad()
def orthogonal_(tensor, gain=1.0, *, generator=None):
    r"""Fill ``tensor`` with a (semi-)orthogonal matrix times ``gain``; dims after the first are flattened.

    ``W = gain·Q`` where ``QR = A``, ``A ~ N(0, 1)^{rows×cols}`` (transposed when wide) and the columns of
    ``Q`` are multiplied by ``sign(diag R)`` so ``Q`` is Haar-distributed (Mezzadri 2007; a zero on the
    diagonal counts as +1). Every singular value equals ``gain``. The QR runs in float32 for
    float16/bfloat16 tensors and the result is cast back, so it works where ``torch.nn.init.orthogonal_``
    fails; for float32 it is bit-identical to torch's.

    References: Saxe et al. (2014), "Exact solutions to the nonlinear dynamics of learning in deep
    linear neural networks".
    """
    gain = _gain(gain)
    floating_tensor(tensor)
    generator_matches(generator, tensor)
    if tensor.dim() < 2:
        raise ValueError(f"orthogonal_ needs a tensor with at least 2 dimensions, got shape {tuple(tensor.shape)}")
    if _is_empty(tensor) or tensor.is_meta:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    work_dtype = torch.float32 if tensor.dtype in _LOW_PRECISION else tensor.dtype
    flat = torch.empty((rows, cols), dtype=work_dtype, device=tensor.device).normal_(0, 1, generator=generator)
    if rows < cols:
        flat.t_()
    q, r = torch.linalg.qr(flat)
    d = torch.diagonal(r)
    q *= torch.where(d < 0, -1.0, 1.0).to(q.dtype)
    if rows < cols:
        q.t_()
    q.mul_(gain)
    tensor.copy_(q.reshape(tensor.shape))
    return tensor


@torch.no_grad()
def normal_(tensor, std=0.01, *, mean=0.0, generator=None):
    r"""``N(mean, std²)``; the default ``std = 0.01`` is the classic framework default the seed names.

    It keeps the signal only when ``fan_in·std² ≈ 1`` (fan_in = 10⁴ for 0.01); in narrower deep nets the
    forward variance shrinks by ``fan_in·10⁻⁴`` per layer.
    """
    std = non_negative("std", std)
    mean = finite("mean", mean)
    floating_tensor(tensor)
    generator_matches(generator, tensor)
    if _is_empty(tensor) or tensor.is_meta:
        return tensor
    return tensor.normal_(mean, std, generator=generator)


@torch.no_grad()
def constant_(tensor, value):
    r"""Fill with ``value``. The seed's counterexample: every unit of a layer computes the same function,
    receives the same gradient and stays equal to its neighbours under gradient descent (symmetry is
    never broken)."""
    value = finite("value", value)
    floating_tensor(tensor)
    if _is_empty(tensor) or tensor.is_meta:
        return tensor
    return tensor.fill_(value)


def zeros_(tensor):
    """Fill with 0 (the usual bias init)."""
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill with 1 (the usual normalization-layer weight)."""
    return constant_(tensor, 1.0)
