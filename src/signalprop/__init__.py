"""signalprop: stable deep-network training in PyTorch, and why it is or is not stable."""

from . import activations, init, models, theory
from .init import Fans, InitReport, fans, init_model
from .probing import ProbeReport, compare, probe

__version__ = "0.1.0"

__all__ = [
    "Fans",
    "InitReport",
    "ProbeReport",
    "__version__",
    "activations",
    "compare",
    "fans",
    "init",
    "init_model",
    "models",
    "probe",
    "theory",
]
