"""signalprop: stable deep-network training in PyTorch, and why it is or is not stable."""

from . import activations, clip, distributed, init, models, monitor, theory
from .init import Fans, InitReport, fans, init_model
from .monitor import Monitor
from .probing import ProbeReport, compare, probe

__version__ = "0.1.0"

__all__ = [
    "Fans",
    "InitReport",
    "Monitor",
    "ProbeReport",
    "__version__",
    "activations",
    "clip",
    "compare",
    "distributed",
    "fans",
    "init",
    "init_model",
    "models",
    "monitor",
    "probe",
    "theory",
]
