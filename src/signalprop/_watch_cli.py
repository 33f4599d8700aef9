"""``signalprop watch LOG.jsonl``: the summary of a monitor log, and its plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from .monitor import read_log
from .monitor._watch import pick_steps, plot_depth, plot_heatmap, summary


def _steps(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"steps must be integers separated by commas, got {text!r}") from None


def add_parser(sub) -> None:
    p = sub.add_parser("watch", help="summarize a monitor log (JSON Lines) and plot it",
                       description="Worst layers and alerts of a Monitor log; writes watch_grad_norms.png "
                                   "(per-layer gradient norm over steps) and watch_depth.png (variance vs depth).")
    p.add_argument("log", metavar="LOG.jsonl", help="a log written by Monitor(sinks=['...jsonl'])")
    p.add_argument("--steps", type=_steps, default=None, metavar="S,S,…",
                   help="steps for the depth plot; negative counts from the end (default: first, middle, last)")
    p.add_argument("--top", type=int, default=8, help="layers in the table (default 8)")
    p.add_argument("--out", default=".", metavar="DIR", help="where the plots go (default .)")
    p.add_argument("--no-plot", action="store_true", help="only print the summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    records = read_log(args.log)
    print(summary(records, top=args.top))
    if args.no_plot or not records:
        return 0
    out = Path(args.out)
    if not out.is_dir():
        raise ValueError(f"--out {out}: not a directory")
    chosen = pick_steps(records, args.steps)
    written = []
    if any(rec.get("params") for rec in records):
        plot_heatmap(records, out / "watch_grad_norms.png")
        written.append(out / "watch_grad_norms.png")
    plot_depth(chosen, out / "watch_depth.png")
    written.append(out / "watch_depth.png")
    print("\nplots: " + ", ".join(str(w) for w in written))
    return 0
