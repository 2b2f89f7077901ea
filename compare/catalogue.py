"""Where scenarios and suites come from: the ones shipped inside the package, and a user's own folders.

Folders are searched in order: those named by `--scenarios DIR` or HBENCH_SCENARIOS (os.pathsep-separated;
the CLI prepends --scenarios to the variable so worker processes inherit it), then the package's own
`compare/scenarios/`. A folder holds `NAME.toml` scenario specs (`realdata/NAME.toml` for those over
published datasets) and `suites/NAME.toml` run suites; the first folder that has a name wins. Loading a
scenario parses it (compare.spec) and then simulates every cell once with a fixed seed, because some names
(factor levels, group effects) only exist once data are drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

from compare.errors import InputError
from compare.simulate import dry_run
from compare.spec import Scenario, cell_label, read_scenario

SHIPPED = Path(__file__).resolve().parent / "scenarios"
ENV = "HBENCH_SCENARIOS"
# scenarios over published datasets (`dataset = NAME`), found by name like the others but kept apart: loading
# one reads the data through R, which `hbench scenarios` and the spec fuzzer should not need
REALDATA = "realdata"


def folders() -> list[Path]:
    """The user's folders (in the order given), then the shipped one."""
    user = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]
    for folder in user:
        if not folder.is_dir():
            raise InputError(f"scenario folder {folder} ({ENV} or --scenarios) is not a directory")
    return [*user, SHIPPED]


def add_folder(folder: str) -> None:
    """Put a user's folder first (the CLI's --scenarios), for this process and the workers it starts."""
    if not Path(folder).is_dir():
        raise InputError(f"--scenarios {folder}: not a directory")
    rest = os.environ.get(ENV, "")
    os.environ[ENV] = os.pathsep.join([str(Path(folder).resolve()), *([rest] if rest else [])])


def scenario_names() -> list[str]:
    return sorted({p.stem for folder in folders() for p in folder.glob("*.toml")})


def suite_names() -> list[str]:
    return sorted({p.stem for folder in folders() for p in (folder / "suites").glob("*.toml")})


def scenario_path(source: str | Path) -> Path:
    """A spec file by path, or the first `NAME.toml` in the folders."""
    path = Path(source)
    if path.suffix:
        if not path.is_file():
            raise InputError(f"{path}: no such spec file")
        return path
    for folder in folders():
        for place in (folder, folder / REALDATA):
            if (place / f"{source}.toml").is_file():
                return place / f"{source}.toml"
    raise InputError(f"unknown scenario {str(source)!r} (known: {', '.join(scenario_names())})")


def suite_path(source: str | Path) -> Path:
    """A suite file by path, or the first `suites/NAME.toml` in the folders."""
    path = Path(source)
    if path.is_file():
        return path
    if not path.suffix:
        for folder in folders():
            if (folder / "suites" / f"{source}.toml").is_file():
                return folder / "suites" / f"{source}.toml"
        raise InputError(f"unknown suite {str(source)!r} (known: {', '.join(suite_names())})")
    raise InputError(f"{source}: no such suite file")


def load_scenario(source: str | Path) -> Scenario:
    """Parse a scenario and simulate each cell once, so names derived from data are checked too."""
    scenario = read_scenario(scenario_path(source))
    for cell in scenario.cells:
        try:
            dry_run(cell)
        except InputError as exc:
            raise InputError(f"{scenario.path}: {cell_label(cell.index, cell.factors)}{exc}") from None
    return scenario
