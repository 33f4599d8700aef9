"""The mean-field prediction for a probed model that is a plain MLP (``Linear → φ → … → Linear``)."""

from __future__ import annotations

from torch import nn

from ..activations._registry import from_module
from ..theory import Prediction, predict


def plain_mlp_prediction(model: nn.Module, args: tuple) -> Prediction | None:
    """``theory.predict`` with each layer's actual ``σ_w² = fan_in·mean(W²)`` and the input's mean square.

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
    sigma_w2 = [float(m.weight.detach().double().pow(2).mean()) * m.in_features for m in linears]
    biases = [float(m.bias.detach().double().pow(2).mean()) for m in linears if m.bias is not None]
    sigma_b2 = sum(biases) / len(biases) if biases else 0.0
    widths = [linears[0].in_features] + [m.out_features for m in linears]
    act = known[0] if known else from_module(nn.Identity())
    q0 = float(x.detach().double().pow(2).mean())
    return predict(act, len(linears), sigma_w2=sigma_w2, sigma_b2=sigma_b2, q0=q0, widths=widths)
