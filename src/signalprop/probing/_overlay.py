"""The mean-field prediction for a probed model that is a plain MLP (``Linear → φ → … → Linear``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..activations._registry import from_module
from ..theory import Prediction, predict

if TYPE_CHECKING:
    from ._report import ParamRow


def plain_mlp_spec(model: nn.Module, args: tuple, params: list[ParamRow]) -> dict | None:
    """Arguments for ``theory.predict`` matching the probed model: each layer's actual
    ``σ_w² = fan_in·mean(W²)`` (``mean(W²) = std² + mean²`` from the probe's parameter rows), the mean
    ``σ_b²``, the widths and the input's mean square.

    Returns ``None`` unless ``model`` is an ``nn.Sequential`` alternating ``nn.Linear`` and one
    activation the registry knows (the same one throughout), ending with a Linear.
    """
    if not isinstance(model, nn.Sequential) or len(args) != 1 or len(model) % 2 == 0:
        return None
    linears, acts = list(model)[0::2], list(model)[1::2]
    if not all(type(m) is nn.Linear for m in linears):
        return None
    known = [from_module(a) for a in acts]
    if any(k is None for k in known) or len({k.name for k in known}) > 1:
        return None
    x = args[0]
    if x.dim() != 2 or x.shape[1] != linears[0].in_features or x.is_meta:
        return None
    mean_square = {row.name: row.std**2 + row.mean**2 for row in params}
    names = [str(i) for i in range(0, len(model), 2)]
    if any(f"{n}.weight" not in mean_square for n in names):
        return None  # an empty weight
    sigma_w2 = [mean_square[f"{n}.weight"] * m.in_features for n, m in zip(names, linears)]
    biases = [mean_square[f"{n}.bias"] for n in names if f"{n}.bias" in mean_square]
    sigma_b2 = sum(biases) / len(biases) if biases else 0.0
    if not all(math.isfinite(v) for v in (*sigma_w2, sigma_b2)):
        return None  # a NaN weight: nothing to predict
    widths = [linears[0].in_features] + [m.out_features for m in linears]
    act = known[0] if known else from_module(nn.Identity())
    q0 = float(torch.linalg.vector_norm(x.detach())) ** 2 / x.numel()
    return {"act": act, "depth": len(linears), "sigma_w2": sigma_w2, "sigma_b2": sigma_b2, "q0": q0, "widths": widths}


def prediction_from_spec(spec: dict | None) -> Prediction | None:
    """The mean-field prediction for a spec from :func:`plain_mlp_spec` (quadrature: computed on demand)."""
    if spec is None:
        return None
    return predict(spec["act"], spec["depth"], sigma_w2=spec["sigma_w2"], sigma_b2=spec["sigma_b2"],
                   q0=spec["q0"], widths=spec["widths"])
