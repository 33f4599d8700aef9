"""The signal-propagation probe: per-layer forward and backward moments of any model."""

from ._capture import Capture, select_modules
from ._probe import preserved, probe
from ._report import ParamRow, ProbeReport, Row, compare
from ._verdict import Finding, summary

__all__ = ["Capture", "Finding", "ParamRow", "ProbeReport", "Row", "compare", "preserved", "probe",
           "select_modules", "summary"]
