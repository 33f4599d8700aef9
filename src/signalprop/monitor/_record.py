"""Host side of the monitor: one logged step's flat values → a record (plain dict), and its alerts.

Pure functions of plain Python data; the device side (:mod:`._monitor`) only decides what goes into
the flat vector. Per layer, the device supplies ``Σx`` and ``Σx²`` of each output (and output gradient)
with its element count; micro-batches and repeated calls in one step are pooled:

    E[x] = Σx / n,    Var[x] = Σx²/n − E[x]²

evaluated in float64. The float32 sums carry a relative error near 1e-6, so a variance below
``1e-6·E[x²]`` is indistinguishable from 0 and is reported as 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FWD, BWD, DEAD, HIST = "fwd", "bwd", "dead", "hist"
_FLOOR = 1e-6


@dataclass(frozen=True)
class Thresholds:
    """When the monitor raises an alert.

    ``fwd_var_high``/``fwd_var_low``: a layer output's variance above/below these (exploding/vanishing
    activations). ``depth_ratio``: the ratio of output-gradient variance (and of output variance) between
    the input side and the output side of the network beyond this (vanishing/exploding gradients; the
    loss's scale cancels in the ratio). ``grad_norm_high``: the total gradient norm above this. ``dead``:
    the fraction of a relu-like layer's units that are 0 for the whole batch above this.
    """

    fwd_var_high: float = 1e4
    fwd_var_low: float = 1e-8
    depth_ratio: float = 1e4
    grad_norm_high: float = math.inf
    dead: float = 0.5


def moments(total: float, square: float, n: int) -> tuple[float, float]:
    """``(E[x], Var[x])`` from ``Σx``, ``Σx²`` and ``n`` (see the module docs for the floor)."""
    mean = total / n
    mean_square = square / n
    var = mean_square - mean * mean
    if math.isfinite(var) and var < _FLOOR * mean_square:
        var = 0.0
    return mean, var


def build_record(step: int, values: list[float], meta: list[tuple], layers: list[tuple[str, str]],
                 params: list[tuple[str, bool]], extras: dict) -> dict:
    """The record of one logged step.

    ``meta`` describes ``values`` in order: ``(layer index, FWD|BWD, n)`` for two values ``Σx, Σx²``;
    ``(layer index, DEAD, units)`` for each unit's maximum over the batch (≤ 0: dead); ``(layer index,
    HIST, bins)`` for ``min, max`` and ``bins`` counts. What follows the layer values is described by
    ``extras`` (name → slot count, in order): ``grad_square`` (``‖g‖²``, one per parameter that has a
    gradient: ``params`` holds ``(name, has_grad)``), then ``param_norm`` and ``update_norm`` (one per
    parameter, on the steps that measure them: ``‖w‖`` and ``‖Δw‖``, the optimizer's last update, whose
    ratio is the update ratio), ``loss``, ``clip_factor``.
    """
    sums: dict[int, dict] = {}
    order: list[int] = []  # layers in forward order of their first call this step
    backward_rank: dict[int, int] = {}
    histograms: dict[str, dict] = {}
    at = 0
    for index, what, n in meta:
        slot = sums.setdefault(index, {FWD: [0.0, 0.0, 0], BWD: [0.0, 0.0, 0], DEAD: []})
        if what in (FWD, BWD):
            acc = slot[what]
            acc[0] += values[at]
            acc[1] += values[at + 1]
            acc[2] += n
            at += 2
            if what == FWD and index not in order:
                order.append(index)
            if what == BWD:
                backward_rank.setdefault(index, len(backward_rank))
        elif what == DEAD:
            peaks = values[at : at + n]
            slot[DEAD].append(sum(1 for v in peaks if v <= 0) / n)
            at += n
            if index not in order:
                order.append(index)
        else:
            lo, hi, counts = values[at], values[at + 1], values[at + 2 : at + 2 + n]
            at += 2 + n
            fwd = slot[FWD]
            histograms[layers[index][0]] = {
                "min": lo, "max": hi, "num": sum(counts), "sum": fwd[0], "sum_squares": fwd[1],
                "bucket_limits": [lo + (hi - lo) * (i + 1) / n for i in range(n)], "bucket_counts": counts}
    rows = []
    for index in order:
        name, kind = layers[index]
        slot = sums[index]
        row = {"name": name, "kind": kind}
        for what in (FWD, BWD):
            total, square, n = slot[what]
            if n:
                mean, var = moments(total, square, n)
                row.update({f"{what}_mean": mean, f"{what}_var": var, f"{what}_nonfinite": not math.isfinite(total)})
            else:
                row.update({f"{what}_mean": None, f"{what}_var": None, f"{what}_nonfinite": None})
        row["dead"] = sum(slot[DEAD]) / len(slot[DEAD]) if slot[DEAD] else None
        row["backward_rank"] = backward_rank.get(index)
        rows.append(row)
    record: dict = {"step": step, "layers": rows}
    tail = {}
    for key, count in extras.items():
        tail[key] = values[at : at + count]
        at += count
    if "grad_square" in tail:
        squares = tail["grad_square"]
        grads = iter([math.sqrt(g) for g in squares])
        weight_norms = tail.get("param_norm") or [None] * len(params)
        if tail.get("update_norm"):
            ratios = [d / max(w, 1e-30) for d, w in zip(tail["update_norm"], weight_norms)]
        else:
            ratios = [None] * len(params)
        record["params"] = [
            {"name": name, "norm": norm, "grad_norm": next(grads) if has else None, "update_ratio": ratio}
            for (name, has), norm, ratio in zip(params, weight_norms, ratios)]
        record["grad_norm"] = math.sqrt(sum(squares)) if squares else None
    record["loss"] = tail["loss"][0] if tail.get("loss") else None
    record["clip_factor"] = tail["clip_factor"][0] if tail.get("clip_factor") else None
    if histograms:
        record["histograms"] = histograms
    return record


def _alert(kind: str, step: int, where: str, layer: str | None, message: str) -> dict:
    return {"kind": kind, "step": step, "where": where, "layer": layer, "message": f"step {step}: {message}"}


def alerts(record: dict, thresholds: Thresholds) -> list[dict]:
    """Alerts for one record, each naming its step and layer."""
    step, rows = record["step"], record["layers"]
    found = _nonfinite(step, record, rows)
    fwd = [r for r in rows if r["fwd_var"] is not None and math.isfinite(r["fwd_var"])]
    high = next((r for r in fwd if r["fwd_var"] > thresholds.fwd_var_high), None)
    if high:
        found.append(_alert("exploding_activations", step, "forward", high["name"],
                            f"Var[h] = {high['fwd_var']:.3g} at layer {high['name']} ({high['kind']}), the first above "
                            f"{thresholds.fwd_var_high:g}; lower the init gain or learning rate, add normalization"))
    low = next((r for r in fwd if r["fwd_var"] < thresholds.fwd_var_low), None)
    if low:
        found.append(_alert("vanishing_activations", step, "forward", low["name"],
                            f"Var[h] = {low['fwd_var']:.3g} at layer {low['name']} ({low['kind']}), the first below "
                            f"{thresholds.fwd_var_low:g}; raise the init gain (gain() for the activation)"))
    found += _depth_ratio(step, rows, thresholds.depth_ratio)
    total = record.get("grad_norm")
    if total is not None and math.isfinite(total) and total > thresholds.grad_norm_high:
        found.append(_alert("exploding_gradients", step, "parameters", None,
                            f"total gradient norm {total:.3g} above {thresholds.grad_norm_high:g}; clip it"))
    for r in rows:
        if r["dead"] is not None and r["dead"] > thresholds.dead:
            found.append(_alert("dead_units", step, "forward", r["name"],
                                f"{r['dead']:.0%} of the units of {r['name']} ({r['kind']}) are 0 for the whole batch"))
            break
    return found


def _nonfinite(step: int, record: dict, rows: list[dict]) -> list[dict]:
    first_fwd = next((r for r in rows if r["fwd_nonfinite"]), None)
    if first_fwd:
        return [_alert("nonfinite", step, "forward", first_fwd["name"],
                       f"the output of {first_fwd['name']} ({first_fwd['kind']}) holds NaN/Inf, the first layer in "
                       "forward order to do so")]
    bwd = sorted((r for r in rows if r["bwd_nonfinite"]), key=lambda r: r["backward_rank"])
    if bwd:
        r = bwd[0]
        return [_alert("nonfinite", step, "backward", r["name"],
                       f"the gradient of the output of {r['name']} ({r['kind']}) holds NaN/Inf, the first layer in "
                       "backward order to do so; clip gradients or lower the learning rate")]
    bad = next((p for p in record.get("params", []) if p["grad_norm"] is not None and not math.isfinite(p["grad_norm"])),
               None)
    if bad:
        return [_alert("nonfinite", step, "parameters", bad["name"], f"the gradient of {bad['name']} holds NaN/Inf")]
    loss = record.get("loss")
    if loss is not None and not math.isfinite(loss):
        return [_alert("nonfinite", step, "loss", None, f"the loss is {loss}")]
    return []


def _depth_ratio(step: int, rows: list[dict], ratio: float) -> list[dict]:
    """Vanishing/exploding across depth: the input-side layer against the output-side one."""
    found = []
    for what, noun in ((BWD, "gradients"), (FWD, "activations")):
        seq = [r for r in rows if r[f"{what}_var"] is not None and math.isfinite(r[f"{what}_var"])]
        if len(seq) < 2:
            continue
        first, last = seq[0][f"{what}_var"], seq[-1][f"{what}_var"]
        # gradients are judged against the output side (where backward starts), activations against the input
        ref = last if what == BWD else first
        symbol = "Var[∂ℓ/∂h]" if what == BWD else "Var[h]"
        for r in (reversed(seq) if what == BWD else seq):
            v = r[f"{what}_var"]
            if v * ratio < ref:
                kind = "vanishing"
            elif v > ref * ratio:
                kind = "exploding"
            else:
                continue
            side = "output" if what == BWD else "input"
            found.append(_alert(f"{kind}_{noun}", step, "backward" if what == BWD else "forward", r["name"],
                                f"{symbol} = {v:.3g} at {r['name']} ({r['kind']}) is beyond a factor {ratio:g} of "
                                f"{ref:.3g} at the {side} side ({symbol} goes {first:.3g} → {last:.3g} from first "
                                "to last layer); use an init gain for the activation, residual connections or "
                                "normalization"))
            break
    return found
