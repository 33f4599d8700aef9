"""The ``signalprop`` command line: a thin layer over the library.

Every error is one line on stderr, prefixed ``signalprop: error:``, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Sequence

import torch

from . import __version__, _experiment_cli, _lsuv_cli, _probe_cli, _watch_cli
from . import activations as acts
from . import theory
from ._plotting import pyplot, save
from ._table import format_table
from .init import SCHEMES, init_model
from .models import mlp


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + message
        raise _UsageError(message)


def _num(x: float | None, digits: int = 6) -> str:
    if x is None:
        return "—"
    return f"{x + 0.0:.{digits}g}"


def _print_json(data) -> None:
    # inf/nan become strings so the output is strict JSON
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    print(json.dumps(clean(data), indent=2))


def _init_report(args: argparse.Namespace) -> int:
    model = mlp(args.depth, args.width, args.activation)
    generator = torch.Generator().manual_seed(args.seed)
    # He's scheme is defined by its activation's gain; the others keep gain 1 (Glorot's convention).
    gain_activation = args.activation if args.init.lower().startswith(("kaiming", "he_")) else None
    report = init_model(model, args.init, args.bias, activation=gain_activation, generator=generator)
    if args.json:
        _print_json(report.to_dict())
        return 0
    gain_note = f", gain of {gain_activation}" if gain_activation else ""
    print(
        f"MLP: {args.depth} Linear layers of width {args.width}, {args.activation}; "
        f"weights {args.init}{gain_note}, biases {args.bias}, seed {args.seed}\n"
    )
    print(report.table())
    return 0


def _torch_gain(act: acts.Activation) -> float | None:
    if act.torch_gain is None:
        return None
    name, param = act.torch_gain
    return torch.nn.init.calculate_gain(name, param)


def _activation_rows() -> list[dict]:
    rows = []
    for name in acts.NAMES:
        if name in ("linear", "swish"):  # aliases
            continue
        act = acts.get(name)
        regime = acts.linear_regime(act)
        rows.append({
            "name": act.name,
            "beta": regime.beta,
            "alpha": regime.alpha,
            "alpha_left": regime.alpha_left,
            "alpha_right": regime.alpha_right,
            "cubic": regime.cubic,
            "seed_check": regime.check,
            "gain_forward": acts.gain(act, "forward"),
            "gain_centred": acts.gain(act, "centred"),
            "gain_backward": acts.gain(act, "backward"),
            "torch_calculate_gain": _torch_gain(act),
        })
    return rows


def _activations(args: argparse.Namespace) -> int:
    rows = _activation_rows()
    if args.json:
        _print_json(rows)
        return 0
    table = []
    for r in rows:
        alpha = _num(r["alpha"]) if r["alpha"] is not None else f"{_num(r['alpha_left'])}|{_num(r['alpha_right'])}"
        table.append([r["name"], _num(r["beta"]), alpha, _num(r["cubic"]), r["seed_check"],
                      _num(r["gain_forward"]), _num(r["gain_centred"]), _num(r["gain_backward"]),
                      _num(r["torch_calculate_gain"])])
    header = ["activation", "β = φ(0)", "α = φ'(0)", "x³ coef.", "α=±1, β=0", "gain fwd", "gain centred",
              "gain bwd", "torch gain"]
    print(format_table(header, table, "lrrrlrrrr"))
    print("\nα shown as left|right at a kink. Gains: forward 1/sqrt(E φ(z)²), centred 1/sqrt(Var φ(z)), "
          "backward 1/sqrt(E φ'(z)²), z ~ N(0, 1).")
    return 0


def _gain(args: argparse.Namespace) -> int:
    act = acts.resolve(args.activation)
    value = acts.gain(act, args.criterion, sigma_b2=args.sigma_b2)
    if args.json:
        _print_json({"activation": act.name, "criterion": args.criterion, "sigma_b2": args.sigma_b2, "gain": value})
    else:
        print(f"{value:.10g}")
    return 0


def _theory(args: argparse.Namespace) -> int:
    act = acts.resolve(args.activation)
    sigma_w2 = args.sigma_w2 if args.sigma_w2 is not None else theory.critical_sigma_w2(act, args.sigma_b2)
    mf = theory.analyse(act, sigma_w2, args.sigma_b2, args.q0)
    pred = theory.predict(act, args.depth, sigma_w2=sigma_w2, sigma_b2=args.sigma_b2, q0=args.q0)
    if args.plot:
        _plot_prediction(pred, args.plot)
    if args.json:
        _print_json({"mean_field": mf.to_dict(), "prediction": pred.to_dict()})
        return 0
    critical = "" if args.sigma_w2 is not None else " (critical)"
    print(f"{act.name}: σ_w² = {sigma_w2:.6g}{critical}, σ_b² = {args.sigma_b2:g}, q0 = {args.q0:g}")
    print(f"q* = {_num(mf.q_star)}, χ₁ = {_num(mf.chi1)} ({mf.phase}), c* = {_num(mf.c_star)}, "
          f"ξ_q = {_num(mf.xi_q, 4)}, ξ_c = {_num(mf.xi_c, 4)}\n")
    every = max(1, args.depth // 20) if args.every is None else args.every
    print(pred.table(every=every))
    if args.plot:
        print(f"\nplot written to {args.plot}")
    return 0


def _plot_prediction(pred: theory.Prediction, path: str) -> None:
    layers = range(1, pred.depth + 1)
    fig, ax = pyplot().subplots(figsize=(6.4, 4.0))
    ax.semilogy(layers, pred.q, marker="o", ms=3, label=r"forward: Var $h^l$ ($q^l$)")
    ax.semilogy(layers, pred.grad, marker="s", ms=3, label=r"backward: Var $\partial\ell/\partial h^l$ (relative)")
    ax.set_xlabel("layer")
    ax.set_ylabel("variance")
    ax.set_title(f"mean-field prediction: {pred.activation}, σ_w² = {pred.sigma_w2[0]:.4g}, σ_b² = {pred.sigma_b2:g}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    save(fig, path, dpi=120)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="signalprop", description="Stable deep-network training, and why.")
    parser.add_argument("--version", action="version", version=f"signalprop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    act_help = f"activation, optionally name:param; one of {', '.join(acts.NAMES)}"

    rep = sub.add_parser("init-report", help="initialize a built-in MLP and print each parameter's init")
    rep.add_argument("--depth", type=int, default=20, help="number of Linear layers (default 20)")
    rep.add_argument("--width", type=int, default=256, help="hidden width (default 256)")
    rep.add_argument("--activation", default="tanh", metavar="NAME", help=act_help + " (default tanh)")
    rep.add_argument("--init", default="xavier_uniform", metavar="SCHEME",
                     help=f"weight scheme, optionally name:number (default xavier_uniform); one of {', '.join(SCHEMES)}")
    rep.add_argument("--bias", default="zeros", metavar="SCHEME", help="bias scheme (default zeros)")
    rep.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    rep.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rep.set_defaults(run=_init_report)

    tab = sub.add_parser("activations", help="every registered activation: the seed's check and computed gains")
    tab.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tab.set_defaults(run=_activations)

    gn = sub.add_parser("gain", help="the weight gain of an activation")
    gn.add_argument("activation", metavar="ACT", help=act_help)
    gn.add_argument("--criterion", default="forward", choices=["forward", "centred", "centered", "backward", "critical"])
    gn.add_argument("--sigma-b2", type=float, default=0.0, help="bias variance (critical criterion only)")
    gn.add_argument("--json", action="store_true", help="print JSON")
    gn.set_defaults(run=_gain)

    th = sub.add_parser("theory", help="mean-field prediction for a deep MLP")
    th.add_argument("activation", metavar="ACT", help=act_help)
    th.add_argument("--sigma-w2", type=float, default=None, help="weight variance × fan_in (default: critical)")
    th.add_argument("--sigma-b2", type=float, default=0.0, help="bias variance (default 0)")
    th.add_argument("--depth", type=_positive_int, default=30, help="number of Linear layers (default 30)")
    th.add_argument("--q0", type=float, default=1.0, help="mean square of the input units (default 1)")
    th.add_argument("--every", type=_positive_int, default=None, help="print every k-th layer")
    th.add_argument("--plot", metavar="FILE", help="write a PNG of the per-layer variances")
    th.add_argument("--json", action="store_true", help="print JSON")
    th.set_defaults(run=_theory)

    _probe_cli.add_parser(sub)
    _watch_cli.add_parser(sub)
    _lsuv_cli.add_parser(sub)
    _experiment_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 success, 2 bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return args.run(args)
    except (_UsageError, ValueError, TypeError) as err:
        print(f"signalprop: error: {err}", file=sys.stderr)
        return 2
