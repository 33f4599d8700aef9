"""Small non-MLP models for probes and tests: an LSTM regressor and a CNN classifier."""

from __future__ import annotations

import torch
from torch import nn

from ..activations import resolve


class LSTMHead(nn.Module):
    """``nn.LSTM`` over ``(batch, time, features)`` and a Linear on the last time step."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, out_features: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def lstm(input_size: int = 16, hidden_size: int = 64, num_layers: int = 2, out_features: int = 1) -> LSTMHead:
    """An LSTM regressor: input ``(batch, time, input_size)``, output ``(batch, out_features)``."""
    return LSTMHead(input_size, hidden_size, num_layers, out_features)


def cnn(in_channels: int = 1, channels: tuple[int, ...] = (16, 32), classes: int = 10, activation="relu",
        image_size: int = 8) -> nn.Sequential:
    """``[Conv3×3 → φ] × len(channels) → global average pool → Linear``, for ``image_size`` inputs."""
    if image_size < 1 or not channels:
        raise ValueError("cnn needs image_size >= 1 and at least one conv layer")
    act = resolve(activation)
    layers: list[nn.Module] = []
    for c_in, c_out in zip((in_channels, *channels), channels):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), act.module()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[-1], classes)]
    return nn.Sequential(*layers)
