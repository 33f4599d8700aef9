"""Built-in models for reports, experiments and tests."""

from ._mlp import mlp

__all__ = ["mlp"]
