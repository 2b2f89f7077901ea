"""`hbench scenarios`: list the scenarios (shipped, and the user's --scenarios folders) with their grid sizes."""

from __future__ import annotations

import argparse

from compare.catalogue import load_scenario, scenario_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenarios", help="list the shipped scenarios and their grids")
    p.add_argument("-v", "--verbose", action="store_true", help="also print each cell's grid values")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(f"{'scenario':<22}{'cells':>6}  {'family':<12}{'dgp':<13}{'design':<20}formula")
    for name in scenario_names():
        sc = load_scenario(name)
        c0 = sc.cell(0)
        dgps = sorted({c.dgp for c in sc.cells})
        designs = sorted({c.design for c in sc.cells})
        print(f"{name:<22}{sc.n_cells:>6}  {c0.family:<12}{'/'.join(dgps):<13}{'/'.join(designs):<20}{c0.formula.text}")
        if args.verbose:
            for cell in sc.cells:
                grid = ", ".join(f"{k}={v}" for k, v in cell.factors.items())
                print(f"    cell {cell.index}: {grid}")
    return 0
