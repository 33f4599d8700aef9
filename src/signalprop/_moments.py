"""Fast whole-tensor moments shared by reports (device tensors; the caller decides when to sync)."""

from __future__ import annotations

import torch


def population_mean_std(t: torch.Tensor) -> torch.Tensor:
    """``[Σw/n, sqrt(Σw²/n − (Σw/n)²)]`` as a float64 device vector, from a sum and a norm.

    Two fast reductions instead of ``Tensor.std``'s Welford pass, which costs 2–3× as much on CPU; the
    cancellation is harmless for weights and gradients, whose mean is small against their spread; a
    variance below 1e-12 of the mean square (the rounding floor) is reported as 0.
    """
    t = t.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    n = t.numel()
    # reductions in the tensor's own dtype: a dtype= argument would copy the whole tensor first
    total = t.sum().double()
    mean_square = torch.linalg.vector_norm(t).double() ** 2 / n
    mean = total / n
    var = mean_square - mean**2
    # below the rounding floor of the two sums the variance is indistinguishable from 0 (a constant tensor)
    std = torch.where(var > 1e-12 * mean_square, var, torch.zeros_like(var)).sqrt()
    return torch.stack([mean, std])
