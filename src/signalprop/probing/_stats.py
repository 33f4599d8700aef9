"""Moments of a layer's output (or its gradient).

``unit`` is the axis that indexes units: channels (dim 1) for convolution-like outputs and 4-D/5-D
tensors, the last dim otherwise (features of ``(batch, features)`` and ``(batch, time, features)``).

Work is split in two. On the device, per tensor, :func:`unit_moments` reduces over everything but the
unit axis: per-unit means and variances, plus the saturated fraction; a handful of kernels, no host sync.
On the host, after the one transfer of all tensors' vectors, :func:`summarize` turns each into
:data:`STAT_FIELDS` (overall ``Var = mean of per-unit variances + variance of per-unit means``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

STAT_FIELDS = (
    "mean",  # over batch and features
    "var",  # population variance over batch and features
    "unit_var_min",  # spread of per-unit variances (the seed's "for all i")
    "unit_var_max",
    "nonfinite",  # fraction of units holding a NaN/Inf value
    "dead",  # fraction of units constant over the batch (dead relu units, fully saturated units)
    "identical",  # 1 when every unit has the same mean and variance as the others (an unbroken symmetry)
    "saturated",  # fraction of values within 1% of a bounded activation's limits (NaN if unbounded)
)
_CHANNEL_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm,
                  nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)


def unit_dim(module: nn.Module, tensor: torch.Tensor) -> int:
    """The axis of ``tensor`` that indexes units (see the module docs)."""
    if tensor.dim() >= 4 or (tensor.dim() == 3 and isinstance(module, _CHANNEL_FIRST)):
        return 1
    return -1


def unit_moments(x: torch.Tensor, dim: int, bounds: tuple[float, float] | None = None,
                 scratch: dict | None = None) -> torch.Tensor:
    """``[scale, saturated, unit means…, unit variances / scale²…]`` as one float32 device vector.

    Squares of a vanishing signal underflow in float32 below ~1e-19, and a float64 copy of every tensor
    would cost an allocation and a pass: the centred values are divided by ``scale`` (the largest
    magnitude, a device scalar) before squaring, and :func:`summarize` multiplies ``scale²`` back in
    float64. ``scratch`` (a dict the caller keeps) lends one buffer per shape for the temporaries, so a
    pass over many layers allocates no activation-sized memory after the first layer of each shape.
    """
    x = x.detach()
    if x.dtype != torch.float32:
        x = x.float()
    if x.dim() < 2:
        x = x.reshape(-1, 1)
        dim = 1
    dim = dim % x.dim()
    reduce = tuple(d for d in range(x.dim()) if d != dim)
    shape = [1] * x.dim()
    shape[dim] = x.shape[dim]
    col_mean = x.mean(dim=reduce)
    lo, hi = torch.aminmax(x)
    scale = torch.maximum(hi, -lo).clamp_min_(1e-30)  # ≥ 1e-30 keeps 1/scale finite in float32
    inv = scale.reciprocal()
    buffer = _buffer(scratch, x)
    centred = torch.addcmul((col_mean * -inv).view(shape), x, inv, out=buffer)  # (x − mean)/scale, one pass
    col_var = centred.square_().mean(dim=reduce)
    if bounds is None:
        saturated = torch.full((1,), math.nan, device=x.device)
    else:
        low, high = bounds
        centre, reach = (low + high) / 2, 0.49 * (high - low)  # within 1% of the range from either bound
        distance = torch.abs(x, out=buffer) if centre == 0 else torch.sub(x, centre, out=buffer).abs_()
        saturated = distance.ge_(reach).mean().reshape(1)
    return torch.cat([scale.reshape(1), saturated, col_mean, col_var])


def _buffer(scratch: dict | None, x: torch.Tensor) -> torch.Tensor:
    if scratch is None:
        return torch.empty_like(x)
    key = (tuple(x.shape), x.device)
    buffer = scratch.get(key)
    if buffer is None:
        buffer = scratch[key] = torch.empty_like(x, memory_format=torch.contiguous_format)
    return buffer


def merge_unit_moments(parts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """One :func:`unit_moments` vector from the ``(ranks, length)`` vectors of the same tensor's parts,
    each over ``counts[r]`` values per unit (float64, host side):

        N = Σ n_r,  m = Σ n_r m_r / N,  v = Σ n_r (v_r + (m_r − m)²) / N

    per unit (Chan et al.'s pairwise combination); the saturated fraction is the count-weighted mean.
    The result has scale 1, its variances unscaled.
    """
    n = (parts.shape[1] - 2) // 2
    weights = counts / counts.sum()
    scale, saturated = parts[:, 0], parts[:, 1]
    means = parts[:, 2 : 2 + n]
    variances = parts[:, 2 + n :] * (scale * scale)[:, None]
    mean = weights @ means
    var = weights @ (variances + (means - mean) ** 2)
    with np.errstate(invalid="ignore"):
        sat = float(weights @ saturated)
    return np.concatenate([[1.0, sat], mean, var])


def summarize(vectors: list[np.ndarray]) -> list[list[float]]:
    """:data:`STAT_FIELDS` for each :func:`unit_moments` vector (host side, float64), vectorised over
    the vectors of equal length."""
    out: list[list[float] | None] = [None] * len(vectors)
    by_length: dict[int, list[int]] = {}
    for i, v in enumerate(vectors):
        by_length.setdefault(len(v), []).append(i)
    for length, idx in by_length.items():
        for i, stats in zip(idx, _summarize_block(np.stack([vectors[i] for i in idx]).astype(np.float64))):
            out[i] = stats
    return out


def _summarize_block(block: np.ndarray) -> list[list[float]]:
    n = (block.shape[1] - 2) // 2
    scale, saturated = block[:, 0], block[:, 1]
    col_mean = block[:, 2 : 2 + n]
    col_var = block[:, 2 + n :] * (scale * scale)[:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        mean = col_mean.mean(axis=1)
        var = col_var.mean(axis=1) + col_mean.var(axis=1)
        var_min, var_max = col_var.min(axis=1), col_var.max(axis=1)
        nonfinite = (~np.isfinite(col_mean)).mean(axis=1)
        if n > 1:
            dead = (col_var == 0).mean(axis=1)
            identical = ((var_max == var_min) & (col_mean.max(axis=1) == col_mean.min(axis=1))).astype(np.float64)
        else:
            dead = identical = np.zeros(len(block))
    columns = (mean, var, var_min, var_max, nonfinite, dead, identical, saturated)
    return np.stack(columns, axis=1).tolist()
