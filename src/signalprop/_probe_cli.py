"""``signalprop probe``: the main job. The seed's comparison by default, or the user's own model."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from .init import init_model, lsuv_
from .models import mlp
from .probing import ProbeReport, probe, summary
from .probing._plot import plot_groups

SEED_RUNS = (
    ("tanh: N(0, 0.01) vs PyTorch's default vs Xavier",
     [("tanh", "normal:0.01"), ("tanh", "torch_default"), ("tanh", "xavier_uniform"), ("tanh", "xavier_normal")]),
    ("sigmoid vs the scaled sigmoid 4·sigmoid(x) − 2, Xavier uniform",
     [("sigmoid", "xavier_uniform"), ("scaled_sigmoid", "xavier_uniform")]),
)


def _lsuv(model: nn.Module, shape: tuple[int, ...], generator: torch.Generator) -> None:
    """LSUV fitted on its own batch (not the one the probe then measures)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the probe's verdict tells the story
        lsuv_(model, torch.randn(shape, generator=generator), generator=generator)


def _mlp_report(args, activation: str, init: str) -> ProbeReport:
    generator = torch.Generator().manual_seed(args.seed)
    data_driven = init.lower() == "lsuv"
    with torch.random.fork_rng():  # torch's own layer init draws from the global RNG
        torch.manual_seed(args.seed)
        model = mlp(args.depth, args.width, activation, None if data_driven else init, residual=args.residual,
                    norm=args.norm, generator=generator)
    if data_driven:
        _lsuv(model, (args.batch, args.width), generator)
    x = torch.randn(args.batch, args.width, generator=generator)
    return probe(model, x, generator=generator, label=f"{activation}, {init}")


def _load_factory(spec: str):
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise ValueError(f"--model must be path/to/file.py:factory, got {spec!r}")
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--model: no such file {path}")
    module_spec = importlib.util.spec_from_file_location(f"_signalprop_user_{file.stem}", file)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"--model: {path} is not a Python file (path/to/file.py:factory)")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - the user's file: report it in one line
        raise ValueError(f"--model: importing {path} failed: {type(err).__name__}: {err}") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError(f"--model: {path} has no callable {name!r}")
    return factory


def shape_arg(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes like 3,32,32, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be >= 1, got {text!r}")
    return shape


def user_model(args) -> nn.Module:
    """The model from ``--model file.py:factory``, built under ``--seed``."""
    if args.input_shape is None:
        raise ValueError("--model needs --input-shape, e.g. --input-shape 3,32,32")
    factory = _load_factory(args.model)
    with torch.random.fork_rng():
        torch.manual_seed(args.seed)
        try:
            model = factory()
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"--model: the factory raised {type(err).__name__}: {err}") from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"--model: the factory returned {type(model).__name__}, not an nn.Module")
    return model


def _user_report(args) -> ProbeReport:
    model = user_model(args)
    generator = torch.Generator().manual_seed(args.seed)
    if args.init and args.init[0].lower() == "lsuv":
        _lsuv(model, (args.batch, *args.input_shape), generator)
    elif args.init:
        init_model(model, args.init[0], generator=generator)
    x = torch.randn((args.batch, *args.input_shape), generator=generator)
    try:
        return probe(model, x, generator=generator, label=args.model)
    except (ValueError, TypeError):
        raise
    except Exception as err:  # noqa: BLE001 - a model that fails on the input: one line
        raise ValueError(f"--model: the forward or backward pass failed: {type(err).__name__}: {err}") from None


def run(args: argparse.Namespace) -> int:
    if args.model:
        groups = [(args.model, [_user_report(args)])]
    elif args.activation is None and not args.init:
        groups = [(title, [_mlp_report(args, a, i) for a, i in runs]) for title, runs in SEED_RUNS]
    else:
        activation = args.activation or "tanh"
        groups = [(f"{activation}", [_mlp_report(args, activation, i) for i in (args.init or ["xavier_uniform"])])]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "probe.png"
    plot_groups([reports for _, reports in groups], [title for title, _ in groups], png)
    if args.json:
        data = [json.loads(r.to_json()) for _, reports in groups for r in reports]
        print(json.dumps(data, indent=1))
        return 0
    shape = "" if args.model else (f"{args.depth} layers × {args.width}" + (", residual" if args.residual else "")
                                    + (f", {args.norm} norm" if args.norm else "") + f", batch {args.batch}")
    for title, reports in groups:
        print(f"== {title}" + (f" ({shape})" if shape else ""))
        for report in reports:
            print(f"\n-- {report.label}")
            print(report.table(every=args.every))
            print(summary(report))
        print()
    print(f"plot: {png}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("probe", help="per-layer forward and backward moments, with verdicts (the main job)",
                       description="Without options: the seed's comparison on a 50-layer, 256-wide MLP.")
    p.add_argument("--depth", type=int, default=50, help="number of Linear layers (default 50)")
    p.add_argument("--width", type=int, default=256, help="width (default 256)")
    p.add_argument("--activation", default=None, metavar="NAME", help="activation (default: the seed's runs)")
    p.add_argument("--init", action="append", metavar="SCHEME",
                   help="weight scheme; repeat to compare (torch_default keeps PyTorch's own init, "
                        "lsuv fits every layer to unit variance on a batch)")
    p.add_argument("--residual", action="store_true", help="residual blocks h + φ(W h + b)")
    p.add_argument("--norm", choices=["batch", "layer"], default=None, help="normalization after each hidden Linear")
    p.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--every", type=int, default=5, help="print every k-th layer (default 5)")
    p.add_argument("--out", default=".", metavar="DIR", help="where probe.png goes (default .)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.add_argument("--model", metavar="FILE.py:FACTORY", help="probe your own model: a factory returning an nn.Module")
    p.add_argument("--input-shape", type=shape_arg, metavar="C,H,W", help="input shape without the batch dim")
    p.set_defaults(run=run)
