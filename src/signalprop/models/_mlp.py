"""A plain deep MLP: ``Linear → φ → … → Linear``, the network of the seed's analysis."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..activations import resolve


def mlp(
    depth: int = 20,
    width: int | Sequence[int] = 256,
    activation="tanh",
    *,
    in_features: int | None = None,
    out_features: int | None = None,
    bias: bool = True,
) -> nn.Sequential:
    """``depth`` Linear layers with ``activation`` between them (none after the last).

    Args:
        depth: number of Linear layers (>= 1).
        width: hidden width, or the ``depth + 1`` layer sizes ``n_0 … n_depth`` (unequal widths show
            Xavier's compromise between ``n_{s-1}`` and ``n_s``).
        activation: a registered name (``signalprop.activations.NAMES``), an ``nn.Module`` or a callable.
        in_features, out_features: input and output sizes when ``width`` is an int (default: width).
        bias: whether the Linear layers have a bias.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    act = resolve(activation)
    if isinstance(width, int) and not isinstance(width, bool):
        sizes = [in_features or width, *([width] * (depth - 1)), out_features or width]
    else:
        if in_features is not None or out_features is not None:
            raise ValueError("in_features/out_features only apply when width is an int")
        sizes = list(width)
        if len(sizes) != depth + 1:
            raise ValueError(f"width as a list needs depth + 1 = {depth + 1} sizes, got {len(sizes)}")
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"layer sizes must be integers >= 1, got {sizes}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(n_in, n_out, bias=bias))
        if i < depth - 1:
            layers.append(act.module())
    return nn.Sequential(*layers)
