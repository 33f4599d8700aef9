"""Plots of probe reports (matplotlib, an optional dependency)."""

from __future__ import annotations


def plot_reports(reports, path, title: str | None = None) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'signalprop[plot]'") from None
    fig, (ax_f, ax_b) = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for i, report in enumerate(reports):
        color = f"C{i % 10}"
        rows = report.layers
        x = range(1, len(rows) + 1)
        ax_f.semilogy(x, [max(r.fwd_var, 1e-300) for r in rows], color=color, marker="o", ms=2.5, label=report.label)
        ax_b.semilogy(x, [max(r.bwd_var, 1e-300) for r in rows], color=color, marker="o", ms=2.5, label=report.label)
        pred = report.prediction
        if pred is not None and len(pred.q) == len(rows):
            top = rows[-1].bwd_var
            ax_f.semilogy(x, pred.q, color=color, ls="--", lw=1)
            ax_b.semilogy(x, [g * top for g in pred.grad], color=color, ls="--", lw=1)
    ax_f.set_title(r"forward: Var[$h^l$]")
    ax_b.set_title(r"backward: Var[$\partial\ell/\partial h^l$]")
    for ax in (ax_f, ax_b):
        ax.set_xlabel("layer (modules with parameters)")
        ax.grid(True, which="major", alpha=0.3)
    ax_f.set_ylabel("variance")
    handles, labels = ax_f.get_legend_handles_labels()
    if any(r.prediction is not None for r in reports):
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="grey", ls="--", lw=1))
        labels.append("mean-field prediction")
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    try:
        fig.savefig(path, dpi=110)
    except OSError as err:
        raise ValueError(f"cannot write {path}: {err.strerror}") from None
    finally:
        plt.close(fig)
