"""Training monitor: per-layer moments, norms, update sizes and NaN/Inf on every step, one transfer each."""

from ._monitor import Monitor, NonFiniteError
from ._record import Thresholds
from ._sinks import CsvSink, JsonlSink, MemorySink, TensorBoardSink, read_log

__all__ = ["CsvSink", "JsonlSink", "MemorySink", "Monitor", "NonFiniteError", "TensorBoardSink", "Thresholds",
           "read_log"]
