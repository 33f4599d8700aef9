"""Moments of a layer's output (or its gradient), computed on the tensor's device without a host sync.

``unit`` is the axis that indexes units: channels (dim 1) for convolution-like outputs and 4-D/5-D
tensors, the last dim otherwise (features of ``(batch, features)`` and ``(batch, time, features)``).
Per-unit moments come from one column-wise mean and variance; the overall ones are assembled from them
(``Var = mean of per-unit variances + variance of per-unit means``) rather than read again.
"""

from __future__ import annotations

import torch
from torch import nn

STAT_FIELDS = (
    "mean",  # over batch and features
    "var",  # population variance over batch and features
    "unit_var_min",  # spread of per-unit variances (the seed's "for all i")
    "unit_var_max",
    "nonfinite",  # fraction of units holding a NaN/Inf value
    "dead",  # fraction of units constant over the batch (dead relu units, fully saturated units)
    "identical",  # 1 when every unit equals the first on every sample (an unbroken symmetry)
    "saturated",  # fraction of values within 1% of a bounded activation's limits (NaN if unbounded)
)
_CHANNEL_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm,
                  nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)


def unit_dim(module: nn.Module, tensor: torch.Tensor) -> int:
    """The axis of ``tensor`` that indexes units (see the module docs)."""
    if tensor.dim() >= 4 or (tensor.dim() == 3 and isinstance(module, _CHANNEL_FIRST)):
        return 1
    return -1


def tensor_stats(x: torch.Tensor, dim: int, bounds: tuple[float, float] | None = None) -> torch.Tensor:
    """A float64 vector of :data:`STAT_FIELDS` for ``x``, on ``x``'s device (no host synchronisation).

    ``nonfinite`` is the fraction of units holding a NaN or Inf on some sample: a non-finite value makes
    its unit's mean non-finite, so this costs nothing beyond the per-unit means.
    """
    x = x.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    if x.dim() < 2:
        x = x.reshape(-1, 1)
        dim = 1
    dim = dim % x.dim()
    n_units = x.shape[dim]
    reduce = tuple(d for d in range(x.dim()) if d != dim)
    shape = [1] * x.dim()
    shape[dim] = n_units
    col_mean = x.mean(dim=reduce)
    # squares in float64: a float32 square underflows once values fall below ~1e-19, and vanishing
    # signals are exactly what the probe must measure
    centred = (x - col_mean.view(shape)).double()
    col_var = centred.square_().mean(dim=reduce)
    del centred  # free before the next temporary: two live activation-sized buffers cost page faults
    col_mean = col_mean.double()
    mean = col_mean.mean()
    var = col_var.mean() + col_mean.var(correction=0)
    var_lo, var_hi = torch.aminmax(col_var)
    mean_lo, mean_hi = torch.aminmax(col_mean)
    nonfinite = (~torch.isfinite(col_mean)).float().mean()
    several = n_units > 1
    dead = (col_var == 0).double().mean() if several else torch.zeros((), dtype=torch.float64, device=x.device)
    identical = ((var_hi == var_lo) & (mean_hi == mean_lo)).float() * several
    if bounds is None:
        saturated = torch.full((), float("nan"), dtype=torch.float64, device=x.device)
    else:
        lo, hi = bounds
        centre, reach = (lo + hi) / 2, 0.49 * (hi - lo)  # within 1% of the range from either bound
        saturated = (x - centre).abs_().ge_(reach).mean()  # in-place compare: no bool temporary
    return torch.stack([mean, var, var_lo, var_hi, nonfinite, dead, identical, saturated]).double()
