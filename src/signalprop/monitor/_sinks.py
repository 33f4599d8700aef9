"""Where monitor records go: JSON Lines, CSV, TensorBoard, or a list in memory.

A sink has ``write(record)`` and ``close()``; ``histograms = True`` asks the monitor for per-layer
output histograms (computed on the device, in the same single transfer).
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

__all__ = ["CsvSink", "JsonlSink", "MemorySink", "TensorBoardSink", "as_sink", "read_log"]


class MemorySink:
    """Keeps every record in ``.records``."""

    histograms = False

    def __init__(self):
        self.records: list[dict] = []

    def write(self, record: dict) -> None:
        self.records.append(record)

    def close(self) -> None:
        pass


class JsonlSink:
    """Appends one JSON object per logged step to ``path`` and flushes it to the operating system, so a
    process killed mid-run loses at most the record being written (see :func:`read_log`).
    Histograms are left out (TensorBoard holds them); NaN and Inf are written as ``NaN``/``Infinity``."""

    histograms = False

    def __init__(self, path):
        self.path = Path(path)
        try:
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as err:
            raise ValueError(f"cannot open {path} for writing: {err.strerror}") from None

    def write(self, record: dict) -> None:
        body = {k: v for k, v in record.items() if k != "histograms"}
        self._file.write(json.dumps(body, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class CsvSink:
    """Long format, one value per line: ``step, scope, name, metric, value`` (scope ``step``, ``layer`` or
    ``param``), so a file holds any model and reads straight into a data frame."""

    histograms = False
    _SKIP = {"name", "kind", "backward_rank"}

    def __init__(self, path):
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        try:
            self._file = open(self.path, "a", newline="", encoding="utf-8")
        except OSError as err:
            raise ValueError(f"cannot open {path} for writing: {err.strerror}") from None
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(["step", "scope", "name", "metric", "value"])

    def write(self, record: dict) -> None:
        step = record["step"]
        rows = [(step, "step", "", key, record[key]) for key in ("loss", "grad_norm", "clip_factor")
                if record.get(key) is not None]
        for scope, items in (("layer", record["layers"]), ("param", record.get("params", []))):
            for item in items:
                rows += [(step, scope, item["name"], k, v) for k, v in item.items()
                         if k not in self._SKIP and v is not None]
        rows += [(step, "alert", a["layer"] or "", a["kind"], a["message"]) for a in record.get("alerts", [])]
        self._writer.writerows(rows)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """Scalars per layer and parameter, and per-layer output histograms (``add_histogram_raw`` from the
    device histograms), through ``torch.utils.tensorboard.SummaryWriter`` (needs the ``tensorboard``
    extra). Pass a log directory or a ``SummaryWriter``."""

    def __init__(self, log_dir_or_writer, *, histograms: bool = True, bins: int = 64):
        if isinstance(log_dir_or_writer, (str, os.PathLike)):
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ValueError("the TensorBoard sink needs tensorboard: pip install 'signalprop[tensorboard]'") \
                    from None
            self.writer = SummaryWriter(str(log_dir_or_writer))
            self._owned = True
        else:
            self.writer = log_dir_or_writer
            self._owned = False
        self.histograms = histograms
        self.bins = bins

    def write(self, record: dict) -> None:
        step, w = record["step"], self.writer
        for key in ("loss", "grad_norm", "clip_factor"):
            if record.get(key) is not None:
                w.add_scalar(f"train/{key}", record[key], step)
        for row in record["layers"]:
            for key in ("fwd_mean", "fwd_var", "bwd_mean", "bwd_var", "dead"):
                v = row.get(key)
                if v is not None and math.isfinite(v):
                    w.add_scalar(f"{key}/{row['name']}", v, step)
        for p in record.get("params", []):
            for key in ("norm", "grad_norm", "update_ratio"):
                v = p.get(key)
                if v is not None and math.isfinite(v):
                    w.add_scalar(f"param_{key}/{p['name']}", v, step)
        for name, h in record.get("histograms", {}).items():
            if h["num"] > 0 and all(math.isfinite(h[k]) for k in ("min", "max", "sum", "sum_squares")):
                w.add_histogram_raw(f"output/{name}", global_step=step, **h)

    def close(self) -> None:
        self.writer.flush()
        if self._owned:
            self.writer.close()


def as_sink(sink):
    """A sink object as is; a path by its suffix: ``.jsonl``/``.json`` → JSON Lines, ``.csv`` → CSV."""
    if hasattr(sink, "write") and hasattr(sink, "close"):
        return sink
    if isinstance(sink, (str, os.PathLike)):
        suffix = Path(sink).suffix.lower()
        if suffix in (".jsonl", ".json", ".ndjson"):
            return JsonlSink(sink)
        if suffix == ".csv":
            return CsvSink(sink)
        raise ValueError(f"cannot tell the sink for {sink!s} from its suffix: use .jsonl or .csv, or a sink object")
    raise TypeError(f"a sink is a path or an object with write() and close(), got {type(sink).__name__}")


def read_log(path) -> list[dict]:
    """The records of a JSON Lines log. A truncated last line (a process killed while writing it) is
    skipped; a broken line anywhere else is an error naming it."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a JSON Lines log (not UTF-8 text)") from None
    while lines and not lines[-1].strip():
        lines.pop()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # the record being written when the process died
            raise ValueError(f"{path}:{number}: not a JSON record") from None
        if not isinstance(record, dict) or "step" not in record or "layers" not in record:
            raise ValueError(f"{path}:{number}: not a signalprop monitor record")
        records.append(record)
    return records
