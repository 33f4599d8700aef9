"""Fan-in and fan-out of a weight, from the layer that owns it.

``fan_in`` is the number of terms summed into one output unit in the forward pass; ``fan_out`` is the
number of terms summed into the gradient of one input unit in the backward pass. Glorot & Bengio's
conditions read ``fan_in · Var[W] = 1`` (forward) and ``fan_out · Var[W] = 1`` (backward).

A bare tensor cannot tell its layout, so it gets torch's rule: dim 0 is the output, dim 1 the input,
the remaining dims a receptive field. A layer knows better, and :func:`fans` uses what it knows:

* ``Linear``: ``(out, in)``, the tensor rule is right.
* ``Bilinear``: ``(out, in1, in2)``: each output sums ``in1·in2`` products, so ``fan_in = in1·in2``; the
  gradient reaching ``x1`` sums ``out·in2`` terms, which is ``fan_out``. (The tensor rule agrees.)
* ``ConvNd``: ``(out, in/groups, *k)``: an output sees ``in/groups`` channels, an input reaches
  ``out/groups`` channels, each through ``prod(k)`` taps. torch counts ``out·prod(k)`` for ``fan_out``,
  ``groups`` times too many.
* ``ConvTransposeNd``: ``(in, out/groups, *k)``, the other way round: ``fan_in = in/groups·prod(k)``,
  ``fan_out = out/groups·prod(k)``. torch swaps the two.
* ``RNN``/``LSTM``/``GRU`` and their cells: ``weight_ih``/``weight_hh`` stack 1, 4 or 3 gate matrices
  along dim 0; each gate is its own map ``(hidden, in)`` into its own nonlinearity, so the fans are the
  block's and ``blocks`` says how many there are. torch treats the stack as one matrix (``fan_out``
  too large by the number of gates).
* ``MultiheadAttention.in_proj_weight``: q, k and v projections, 3 blocks of ``(E, E)``.
* ``Embedding``/``EmbeddingBag``: ``(num, dim)`` is a lookup; the input is one-hot, so each output sums
  exactly one weight (``fan_in = 1``, which makes LeCun init the classic ``N(0, 1)``) and each
  token reaches ``dim`` outputs (``fan_out = dim``). The tensor rule reads ``fan_in = dim``.

Stride is not counted: a strided convolution's backward sum has ``prod(k/stride)`` taps per channel on
average, but the convention of Glorot, He and every framework counts connections per kernel, and so do we.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Fans", "fans"]


@dataclass(frozen=True)
class Fans:
    """Fans of one weight (of each block, for fused weights).

    Attributes:
        fan_in: terms summed into one output unit (forward).
        fan_out: terms summed into one input unit's gradient (backward).
        receptive_field: kernel taps per channel pair (1 for dense layers).
        blocks: number of equal blocks stacked along dim 0 that are initialized separately
            (4 for LSTM gates, 3 for GRU gates and attention q/k/v, else 1).
        rule: which rule produced the numbers.
    """

    fan_in: int
    fan_out: int
    receptive_field: int = 1
    blocks: int = 1
    rule: str = "tensor"

    @property
    def fan_avg(self) -> float:
        """``(fan_in + fan_out) / 2``, the denominator of Xavier's variance ``1 / fan_avg``."""
        return (self.fan_in + self.fan_out) / 2

    def as_dict(self) -> dict:
        return {
            "fan_in": self.fan_in,
            "fan_out": self.fan_out,
            "receptive_field": self.receptive_field,
            "blocks": self.blocks,
            "rule": self.rule,
        }


def tensor_fans(tensor: torch.Tensor) -> Fans:
    """torch's rule: ``fan_in = size(1)·rf``, ``fan_out = size(0)·rf``, ``rf = prod(size[2:])``."""
    if tensor.dim() < 2:
        raise ValueError(
            f"fans need a tensor with at least 2 dimensions, got shape {tuple(tensor.shape)}"
        )
    rf = math.prod(tensor.shape[2:])
    return Fans(tensor.shape[1] * rf, tensor.shape[0] * rf, rf)


_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_CELL_GATES = {nn.RNNCell: 1, nn.LSTMCell: 4, nn.GRUCell: 3}


def _stacked(weight: torch.Tensor, blocks: int, rule: str) -> Fans:
    rows = weight.shape[0]
    if rows % blocks:
        raise ValueError(f"{rule}: {rows} rows do not split into {blocks} blocks")
    return Fans(weight.shape[1], rows // blocks, 1, blocks, rule)


def _module_fans(module: nn.Module, name: str, weight: torch.Tensor) -> Fans:
    if isinstance(module, nn.modules.conv._ConvNd):
        groups = module.groups
        rf = math.prod(weight.shape[2:])
        if module.transposed:  # (in, out/groups, *k)
            return Fans(weight.shape[0] // groups * rf, weight.shape[1] * rf, rf, 1,
                        f"conv-transpose (groups={groups})")
        return Fans(weight.shape[1] * rf, weight.shape[0] // groups * rf, rf, 1, f"conv (groups={groups})")
    if isinstance(module, nn.RNNBase) and name.startswith(("weight_ih", "weight_hh")):
        return _stacked(weight, _GATES[module.mode], f"{module.mode.lower()} gates")
    if isinstance(module, nn.RNNCellBase) and name in ("weight_ih", "weight_hh"):
        gates = next(g for cls, g in _CELL_GATES.items() if isinstance(module, cls))
        return _stacked(weight, gates, f"{type(module).__name__} gates")
    if isinstance(module, nn.MultiheadAttention) and name == "in_proj_weight":
        return _stacked(weight, 3, "attention q/k/v")
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return Fans(1, weight.shape[1], 1, 1, "embedding lookup")
    known = (nn.Linear, nn.Bilinear, nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention)
    rule = type(module).__name__.lower() if isinstance(module, known) else "tensor (layer not known)"
    fans_ = tensor_fans(weight)
    return Fans(fans_.fan_in, fans_.fan_out, fans_.receptive_field, 1, rule)


def fans(obj: torch.Tensor | nn.Module, name: str | None = None) -> Fans:
    """Fans of a tensor, or of the parameter ``name`` (default ``"weight"``) of a layer.

    Args:
        obj: a tensor (torch's layout rule) or a module (the layer's own rule, see the module docs).
        name: the parameter's name within ``obj`` when ``obj`` is a module.

    Returns:
        :class:`Fans`; for fused weights the fans of one block, with ``blocks`` set.

    Example:
        >>> fans(nn.Conv2d(8, 16, 3, groups=4))
        Fans(fan_in=18, fan_out=36, receptive_field=9, blocks=1, rule='conv (groups=4)')
    """
    if isinstance(obj, torch.Tensor):
        if name is not None:
            raise TypeError("name is only meaningful when obj is a module")
        return tensor_fans(obj)
    if not isinstance(obj, nn.Module):
        raise TypeError(f"obj must be a torch.Tensor or an nn.Module, got {type(obj).__name__}")
    name = "weight" if name is None else name
    weight = obj._parameters.get(name)
    if weight is None:
        have = [n for n, p in obj.named_parameters(recurse=False)]
        raise ValueError(
            f"{type(obj).__name__} has no parameter {name!r}; it has: {', '.join(have) or 'none'}"
        )
    if weight.dim() < 2:
        raise ValueError(
            f"{type(obj).__name__}.{name} has shape {tuple(weight.shape)}; fans need at least 2 dimensions"
        )
    return _module_fans(obj, name, weight)
