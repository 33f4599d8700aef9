"""scikit-learn's handwritten digits (UCI optdigits test set): 1797 8×8 images, 10 classes."""

from __future__ import annotations

import torch


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Images as ``(1797, 64)`` float32 in [0, 1] (pixel counts 0–16 divided by 16) and int64 labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ValueError("the digits data set needs scikit-learn: pip install 'signalprop[experiments]'") from None
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    return x, torch.tensor(data.target, dtype=torch.int64)
