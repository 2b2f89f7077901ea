"""`hbench draws RUN --scenario S --cell C --rep R --engine E`: where one fit's kept posterior draws are, and a
look at them (the variables and an ArviZ summary of the model parameters)."""

from __future__ import annotations

import argparse
import warnings

from compare.posterior import find_draws, load_draws


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("draws", help="the kept posterior draws of one fit (engines with keep_draws = true)")
    p.add_argument("run_id")
    p.add_argument("--scenario", required=True)
    p.add_argument("--cell", type=int, default=0)
    p.add_argument("--rep", type=int, default=0)
    p.add_argument("--engine", required=True, help="the engine's label in the run")
    p.add_argument("--results", default="results", help="results root folder")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    path = find_draws(args.run_id, args.scenario, args.cell, args.rep, args.engine, args.results)
    idata = load_draws(args.run_id, args.scenario, args.cell, args.rep, args.engine, args.results)
    print(path)
    for group in idata.groups():
        print(f"  {group}: {', '.join(f'{k} {tuple(v.shape)}' for k, v in idata[group].data_vars.items())}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz as az

        names = [v for v in ("b", "sd", "cor", "sigma", "phi", "mrp") if v in idata.posterior]
        print(az.summary(idata, var_names=names).to_string())
    print(
        f"In Python: compare.load_draws({args.run_id!r}, {args.scenario!r}, {args.cell}, {args.rep}, "
        f"{args.engine!r}) gives this InferenceData."
    )
    return 0
