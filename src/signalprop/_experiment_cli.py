"""``signalprop experiment list`` and ``signalprop experiment run NAME``."""

from __future__ import annotations

import argparse

from ._table import format_table


def _list(args: argparse.Namespace) -> int:
    from . import experiments

    rows = [[e.name, e.title] for e in experiments.experiments()]
    print(format_table(["name", "what it shows"], rows, "ll"))
    return 0


def _run(args: argparse.Namespace) -> int:
    from . import experiments

    experiment = experiments.get(args.name)  # an unknown name fails before anything is written
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    try:
        document = experiments.run(experiment.name, quick=args.quick, out=args.out, seed=args.seed,
                                   progress=not args.no_progress)
    except FileNotFoundError as err:
        raise ValueError(str(err)) from None
    out = args.out or f"out/{experiment.name}{'-quick' if args.quick else ''}"
    with open(f"{out}/results.md") as f:
        print(f.read())
    print(f"results.json, results.md and {len(document['figures'])} figure(s) written to {out} "
          f"in {document['results']['seconds']:.1f} s")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("experiment", help="reproduce the seed's claims and the published results")
    verbs = p.add_subparsers(dest="verb", metavar="list|run", required=True)  # one-line errors, as p
    ls = verbs.add_parser("list", help="the experiments, by name")
    ls.set_defaults(run=_list)
    run = verbs.add_parser("run", help="run one experiment; writes results.json, results.md and PNG figures")
    run.add_argument("name", metavar="NAME", help="an experiment name from `signalprop experiment list`")
    run.add_argument("--quick", action="store_true", help="the small version (under 30 s)")
    run.add_argument("--out", metavar="DIR", help="output directory (default out/NAME or out/NAME-quick)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(run=_run)
