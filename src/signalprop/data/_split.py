"""Labelled data split into train, validation and test parts, standardized on the training part."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Split:
    """Flattened, standardized features and labels of the three parts."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int

    @property
    def features(self) -> int:
        return self.x_train.shape[1]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def split(name: str, x: torch.Tensor, y: torch.Tensor, *, val: int, test: int, seed: int = 0,
          test_set: tuple[torch.Tensor, torch.Tensor] | None = None) -> Split:
    """Shuffle with ``seed``, hold out ``val`` (and ``test``, unless ``test_set`` is given) examples, flatten
    the features and standardize them with the training part's per-feature mean and std.

    ``x ← (x − μ_train)/σ_train`` makes every input unit zero-mean, unit-variance: the seed's ``a = 1`` at
    the input, which the variance analysis assumes.
    """
    x = x.reshape(len(x), -1).float()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    held = val + (0 if test_set is not None else test)
    if held >= len(x):
        raise ValueError(f"{name}: {len(x)} examples cannot hold out {held}")
    x_val, y_val = x[:val], y[:val]
    if test_set is None:
        x_test, y_test = x[val:held], y[val:held]
    else:
        x_test, y_test = test_set[0].reshape(len(test_set[0]), -1).float(), test_set[1]
    x_train, y_train = x[held:], y[held:]
    mean = x_train.mean(0)
    std = x_train.std(0).clamp_min(1e-3)
    scale = lambda t: (t - mean) / std  # noqa: E731
    classes = int(torch.cat([y_train, y_val, y_test]).max()) + 1
    return Split(name, scale(x_train), y_train, scale(x_val), y_val, scale(x_test), y_test, classes)
