"""Plots of probe reports (matplotlib, an optional dependency)."""

from __future__ import annotations

from .._plotting import pyplot, save


def _positive(v: float) -> float:
    return v if v > 0 else float("nan")


def plot_reports(reports, path, title: str | None = None) -> None:
    """One row of two panels (forward, backward) for ``reports``."""
    plot_groups([reports], [title], path)


def plot_groups(groups, titles, path) -> None:
    """One row of forward/backward panels per group of reports, written to ``path``."""
    fig, axes = pyplot().subplots(len(groups), 2, figsize=(11, 4.4 * len(groups)), squeeze=False)
    for (ax_f, ax_b), reports, title in zip(axes, groups, titles):
        _panel(ax_f, ax_b, reports, title)
    save(fig, path)


def _panel(ax_f, ax_b, reports, title) -> None:
    for i, report in enumerate(reports):
        color = f"C{i % 10}"
        rows = report.layers
        x = range(1, len(rows) + 1)
        # a variance of exactly 0 (underflow in the network itself) leaves a gap in the line
        ax_f.semilogy(x, [_positive(r.fwd_var) for r in rows], color=color, marker="o", ms=2.5, label=report.label)
        ax_b.semilogy(x, [_positive(r.bwd_var) for r in rows], color=color, marker="o", ms=2.5, label=report.label)
        pred = report.prediction
        if pred is not None and len(pred.q) == len(rows):
            top = rows[-1].bwd_var
            ax_f.semilogy(x, pred.q, color=color, ls="--", lw=1)
            ax_b.semilogy(x, [g * top for g in pred.grad], color=color, ls="--", lw=1)
    prefix = f"{title}\n" if title else ""
    ax_f.set_title(prefix + r"forward: Var[$h^l$]", fontsize=10)
    ax_b.set_title(prefix + r"backward: Var[$\partial\ell/\partial h^l$]", fontsize=10)
    for ax in (ax_f, ax_b):
        ax.set_xlabel("layer (modules with parameters)")
        ax.grid(True, which="major", alpha=0.3)
    ax_f.set_ylabel("variance")
    if any(r.prediction is not None for r in reports):
        ax_f.plot([], [], color="grey", ls="--", lw=1, label="mean-field prediction")
    ax_f.legend(fontsize=8, frameon=False)
