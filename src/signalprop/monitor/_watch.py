"""Reading a monitor log back: a summary (worst layers, alerts) and plots, for ``signalprop watch``."""

from __future__ import annotations

import math

from .._plotting import pyplot, save
from .._table import format_table


def _g(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def worst_layers(records: list[dict]) -> list[dict]:
    """Per layer over the whole log: largest and smallest output variance, smallest and largest gradient
    variance, largest weight-gradient norm and update ratio (of ``weight``, when the layer has one), and
    the first step with NaN/Inf."""
    table: dict[str, dict] = {}
    params: dict[str, dict] = {}
    for rec in records:
        for p in rec.get("params", []):
            params.setdefault(p["name"], []).append(p)
        for row in rec["layers"]:
            t = table.setdefault(row["name"], {"name": row["name"], "kind": row["kind"], "fwd_var_max": None,
                                               "fwd_var_min": None, "bwd_var_min": None, "bwd_var_max": None,
                                               "dead_max": None, "first_nonfinite": None})
            for key, fn, field in (("fwd_var", max, "fwd_var_max"), ("fwd_var", min, "fwd_var_min"),
                                   ("bwd_var", min, "bwd_var_min"), ("bwd_var", max, "bwd_var_max"),
                                   ("dead", max, "dead_max")):
                v = row.get(key)
                if v is not None and not math.isnan(v):
                    t[field] = v if t[field] is None else fn(t[field], v)
            if t["first_nonfinite"] is None and (row.get("fwd_nonfinite") or row.get("bwd_nonfinite")):
                t["first_nonfinite"] = rec["step"]
    for t in table.values():
        mine = [p for name, ps in params.items() if name.rsplit(".", 1)[0] == t["name"] for p in ps]
        # the weight speaks for the layer (a bias initialised at 0 has a huge relative update at first)
        mine = [p for p in mine if p["name"].endswith(".weight")] or mine
        grads = [p["grad_norm"] for p in mine if p["grad_norm"] is not None and math.isfinite(p["grad_norm"])]
        ratios = [p["update_ratio"] for p in mine if p.get("update_ratio") is not None]
        t["grad_norm_max"] = max(grads) if grads else None
        t["update_ratio_max"] = max(ratios) if ratios else None
    return list(table.values())


def summary(records: list[dict], top: int = 8) -> str:
    """Steps, loss, the first alert of each kind and layer, and the layers with the most extreme moments."""
    if not records:
        return "empty log: no completed records"
    first, last = records[0], records[-1]
    lines = [f"{len(records)} logged steps, {first['step']}…{last['step']}"]
    if last.get("loss") is not None:
        lines[0] += f"; loss {_g(first.get('loss'))} → {_g(last['loss'])}"
    seen, alerts = set(), []
    for rec in records:
        for a in rec.get("alerts", []):
            key = (a["kind"], a.get("layer"))
            if key not in seen:
                seen.add(key)
                alerts.append(a)
    lines.append(f"alerts: {len(alerts)}" if alerts else "alerts: none")
    lines += [f"  {a['kind']}: {a['message']}" for a in alerts[:20]]
    rows = worst_layers(records)
    if rows:
        def extremity(t):
            lo, hi = t["bwd_var_min"], t["fwd_var_max"]
            spread = [abs(math.log10(v)) for v in (lo, hi) if v is not None and v > 0 and math.isfinite(v)]
            return (t["first_nonfinite"] is None, -max(spread, default=0.0))

        shown = sorted(rows, key=extremity)[:top]
        lines.append("")
        lines.append(f"layers with the most extreme moments (of {len(rows)}):")
        lines.append(format_table(
            ["layer", "kind", "max Var[h]", "min Var[h]", "min Var[∂ℓ/∂h]", "max Var[∂ℓ/∂h]", "max ‖∇w‖",
             "max ‖Δw‖/‖w‖", "dead", "NaN at"],
            [[t["name"], t["kind"], _g(t["fwd_var_max"]), _g(t["fwd_var_min"]), _g(t["bwd_var_min"]),
              _g(t["bwd_var_max"]), _g(t["grad_norm_max"]), _g(t["update_ratio_max"]), _g(t["dead_max"]),
              "" if t["first_nonfinite"] is None else str(t["first_nonfinite"])] for t in shown],
            "llrrrrrrrr"))
    return "\n".join(lines)


def pick_steps(records: list[dict], wanted: list[int] | None) -> list[dict]:
    """Records at the given steps (negative: from the end of the log); default first, middle, last."""
    if not wanted:
        idx = sorted({0, len(records) // 2, len(records) - 1})
        return [records[i] for i in idx]
    by_step = {r["step"]: r for r in records}
    chosen = []
    for s in wanted:
        if s < 0:
            if -s > len(records):
                raise ValueError(f"step {s}: the log has only {len(records)} records")
            chosen.append(records[s])
        elif s in by_step:
            chosen.append(by_step[s])
        else:
            raise ValueError(f"step {s} is not in the log (logged steps: {records[0]['step']}…{records[-1]['step']})")
    return chosen


def _positive(v):
    return v if v is not None and v > 0 and math.isfinite(v) else float("nan")


def plot_heatmap(records: list[dict], path) -> None:
    """log10 of each parameterised layer's weight-gradient norm (rows) over logged steps (columns)."""
    names = [t["name"] for t in worst_layers(records)]
    by_layer = {n: i for i, n in enumerate(names)}
    grid = [[float("nan")] * len(records) for _ in names]
    for j, rec in enumerate(records):
        per_layer: dict[str, float] = {}
        for p in rec.get("params", []):
            owner = p["name"].rsplit(".", 1)[0]
            if p["grad_norm"] is not None and owner in by_layer:
                per_layer[owner] = math.hypot(per_layer.get(owner, 0.0), p["grad_norm"])
        for owner, value in per_layer.items():
            grid[by_layer[owner]][j] = math.log10(value) if value > 0 and math.isfinite(value) else float("nan")
    rows = [i for i, r in enumerate(grid) if any(not math.isnan(v) for v in r)]
    if not rows:
        raise ValueError("the log holds no parameter gradient norms to plot")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.25 * len(rows) + 2.2))
    image = ax.imshow([grid[i] for i in rows], aspect="auto", interpolation="nearest", cmap="viridis",
                      extent=(records[0]["step"] - 0.5, records[-1]["step"] + 0.5, len(rows) - 0.5, -0.5))
    ax.set_yticks(range(len(rows)), [names[i] for i in rows], fontsize=7)
    ax.set_xlabel("step")
    ax.set_ylabel("layer (forward order)")
    ax.set_title("log10 ‖∂ℓ/∂W‖ per layer")
    fig.colorbar(image, ax=ax)
    save(fig, path)


def plot_depth(records: list[dict], path) -> None:
    """Forward and backward variance against depth, one line per chosen step."""
    plt = pyplot()
    fig, (ax_f, ax_b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, rec in enumerate(records):
        rows = [r for r in rec["layers"] if r["fwd_var"] is not None]
        x = range(1, len(rows) + 1)
        ax_f.semilogy(x, [_positive(r["fwd_var"]) for r in rows], marker="o", ms=2.5, color=f"C{i % 10}",
                      label=f"step {rec['step']}")
        ax_b.semilogy(x, [_positive(r["bwd_var"]) for r in rows], marker="o", ms=2.5, color=f"C{i % 10}")
    ax_f.set_title(r"forward: Var[$h^l$]", fontsize=10)
    ax_b.set_title(r"backward: Var[$\partial\ell/\partial h^l$]", fontsize=10)
    for ax in (ax_f, ax_b):
        ax.set_xlabel("layer (modules with parameters)")
        ax.grid(True, alpha=0.3)
    ax_f.legend(fontsize=8, frameon=False)
    save(fig, path)
