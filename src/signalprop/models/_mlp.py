"""A deep MLP: ``Linear → φ → … → Linear``, the network of the seed's analysis, with the seed's levers
as options (residual connections, normalization, unequal widths)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import choice
from ..activations import resolve
from ..init import init_model

NORMS = ("batch", "layer")


class Residual(nn.Module):
    """``h + f(h)``: the seed's "turn multiplication into addition" (He et al. 2016)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _sizes(depth, width, widths, in_features, out_features) -> list[int]:
    if widths is not None:
        if in_features is not None or out_features is not None:
            raise ValueError("in_features/out_features only apply without widths")
        sizes = list(widths)
        if len(sizes) != depth + 1:
            raise ValueError(f"widths needs depth + 1 = {depth + 1} sizes, got {len(sizes)}")
    else:
        sizes = [in_features or width, *([width] * (depth - 1)), out_features or width]
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"layer sizes must be integers >= 1, got {sizes}")
    return sizes


def _norm(kind: str | None, n: int) -> list[nn.Module]:
    if kind is None:
        return []
    return [nn.BatchNorm1d(n) if kind == "batch" else nn.LayerNorm(n)]


def mlp(
    depth: int = 20,
    width: int = 256,
    activation="tanh",
    init: str | None = None,
    *,
    bias: bool = True,
    residual: bool = False,
    norm: str | None = None,
    widths: Sequence[int] | None = None,
    in_features: int | None = None,
    out_features: int | None = None,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """``depth`` Linear layers with ``activation`` between them (none after the last).

    Args:
        depth: number of Linear layers (>= 1).
        width: hidden width.
        activation: a registered name (``signalprop.activations.NAMES``), an ``nn.Module`` or a callable.
        init: a scheme for :func:`signalprop.init_model` (He/Kaiming schemes get the activation's gain),
            or ``None``/``"torch_default"`` to keep torch's own layer init (drawn from the global RNG).
        bias: whether the Linear layers have a bias.
        residual: hidden layers become ``h + φ(norm(W h + b))`` blocks (needs equal hidden widths).
        norm: ``"batch"`` or ``"layer"``: a normalization layer after each hidden Linear.
        widths: the ``depth + 1`` layer sizes ``n_0 … n_depth`` instead of ``width``.
        in_features, out_features: input and output sizes (default: ``width``).
        generator: random generator for ``init``.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    act = resolve(activation)
    norm = None if norm is None else choice("norm", norm, NORMS)
    sizes = _sizes(depth, width, widths, in_features, out_features)
    if residual and len(set(sizes[1:-1])) > 1:
        raise ValueError(f"residual blocks need equal hidden widths, got {sizes[1:-1]}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        if i == depth - 1:
            layers.append(nn.Linear(n_in, n_out, bias=bias))
            break
        block = [nn.Linear(n_in, n_out, bias=bias), *_norm(norm, n_out), act.module()]
        if residual and 0 < i:
            layers.append(Residual(nn.Sequential(*block)))
        else:
            layers.extend(block)
    model = nn.Sequential(*layers)
    if init is not None and init.lower() != "torch_default":
        he = init.lower().startswith(("kaiming", "he_"))
        init_model(model, init, activation=act if he else None, generator=generator)
    return model
