"""Built-in models for reports, experiments and tests."""

from ._mlp import ACTIVATIONS, mlp

__all__ = ["ACTIVATIONS", "mlp"]
