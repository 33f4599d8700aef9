"""``signalprop lsuv``: layer-sequential unit-variance init of a built-in MLP or the user's model."""

from __future__ import annotations

import argparse
import json
import warnings

import torch

from ._probe_cli import shape_arg, user_model
from .init import lsuv_
from .models import mlp


def add_parser(sub) -> None:
    p = sub.add_parser("lsuv", help="fit every layer to unit output variance (LSUV) and print the report",
                       description="Without --model: a 20-layer, 256-wide ReLU MLP.")
    p.add_argument("--model", metavar="FILE.py:FACTORY", help="your own model: a factory returning an nn.Module")
    p.add_argument("--input-shape", type=shape_arg, metavar="C,H,W", help="input shape without the batch dim")
    p.add_argument("--depth", type=int, default=20, help="built-in MLP: number of Linear layers (default 20)")
    p.add_argument("--width", type=int, default=256, help="built-in MLP: width (default 256)")
    p.add_argument("--activation", default="relu", metavar="NAME", help="built-in MLP: activation (default relu)")
    p.add_argument("--batch", type=int, default=256, help="batch size of the fitting batch (default 256)")
    p.add_argument("--target-var", type=float, default=1.0, help="target output variance (default 1)")
    p.add_argument("--tol", type=float, default=0.02, help="relative tolerance (default 0.02)")
    p.add_argument("--max-iter", type=int, default=20, help="rescalings per layer at most (default 20)")
    p.add_argument("--correct-mean", action="store_true", help="also zero each unit's mean through the bias")
    p.add_argument("--per-channel", action="store_true", help="fit each output channel separately")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    generator = torch.Generator().manual_seed(args.seed)
    if args.model:
        model, shape = user_model(args), args.input_shape
    else:
        model, shape = mlp(args.depth, args.width, args.activation), (args.width,)
    x = torch.randn((args.batch, *shape), generator=generator)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        try:
            report = lsuv_(model, x, target_var=args.target_var, tol=args.tol, max_iter=args.max_iter,
                           correct_mean=args.correct_mean, per_channel=args.per_channel, generator=generator)
        except (ValueError, TypeError):
            raise
        except Exception as err:  # noqa: BLE001 - a model that fails on the input: one line
            raise ValueError(f"lsuv: the forward pass failed: {type(err).__name__}: {err}") from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
        for w in caught:
            print(f"warning: {w.message}")
    return 0
