"""The ``signalprop`` command line: a thin layer over the library.

Every error is one line on stderr, prefixed ``signalprop: error:``, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

import torch

from . import __version__
from .init import SCHEMES, init_model
from .activations import NAMES
from .models import mlp


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + message
        raise _UsageError(message)


def _init_report(args: argparse.Namespace) -> int:
    model = mlp(args.depth, args.width, args.activation)
    generator = torch.Generator().manual_seed(args.seed)
    # He's scheme is defined by its activation's gain; the others keep gain 1 (Glorot's convention).
    gain_activation = args.activation if args.init.lower().startswith(("kaiming", "he_")) else None
    report = init_model(model, args.init, args.bias, activation=gain_activation, generator=generator)
    if args.json:
        print(report.to_json(indent=2))
    else:
        gain_note = f", gain of {gain_activation}" if gain_activation else ""
        print(
            f"MLP: {args.depth} Linear layers of width {args.width}, {args.activation}; "
            f"weights {args.init}{gain_note}, biases {args.bias}, seed {args.seed}\n"
        )
        print(report.table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="signalprop", description="Stable deep-network training, and why.")
    parser.add_argument("--version", action="version", version=f"signalprop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    rep = sub.add_parser("init-report", help="initialize a built-in MLP and print each parameter's init")
    rep.add_argument("--depth", type=int, default=20, help="number of Linear layers (default 20)")
    rep.add_argument("--width", type=int, default=256, help="hidden width (default 256)")
    rep.add_argument("--activation", default="tanh", metavar="NAME",
                     help=f"activation, optionally name:param (default tanh); one of {', '.join(NAMES)}")
    rep.add_argument("--init", default="xavier_uniform", metavar="SCHEME",
                     help=f"weight scheme, optionally name:number (default xavier_uniform); one of {', '.join(SCHEMES)}")
    rep.add_argument("--bias", default="zeros", metavar="SCHEME", help="bias scheme (default zeros)")
    rep.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    rep.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rep.set_defaults(run=_init_report)
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
