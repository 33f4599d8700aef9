"""Built-in models for probes, experiments and tests."""

from ._mlp import NORMS, Residual, mlp
from ._small import LSTMHead, cnn, lstm

__all__ = ["NORMS", "LSTMHead", "Residual", "cnn", "lstm", "mlp"]
