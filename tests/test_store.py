"""The results store can be trusted after crashes, kills and races (issue 13).

Checks: an interrupted start-up leaves no run folder without its manifest; an existing folder, or
one an older version left without a manifest, is one line telling the user what to do."""

import os
from pathlib import Path

import pytest

import compare.store as store_module
from compare.cli import main
from compare.errors import InputError
from compare.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HBENCH_ENGINES": "tests.doubles", "PYTHONPATH": str(ROOT)}
os.environ["HBENCH_ENGINES"] = "tests.doubles"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def new_run(root: Path, run_id: str = "r", **manifest) -> RunStore:
    """A run folder as `hbench run` leaves it, with no writer."""
    store = RunStore(run_id, root)
    store.create({"status": "running", "n_tasks": 1, **manifest})
    store.release()
    return RunStore(run_id, root)


# -- creating a run --------------------------------------------------------------------------------

def test_an_interrupted_start_up_leaves_no_run_folder(tmp_path, monkeypatch):
    def ctrl_c(path, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "_atomic_write", ctrl_c)  # Ctrl-C while the manifest is written
    with pytest.raises(KeyboardInterrupt):
        RunStore("r", tmp_path).create({"status": "running", "n_tasks": 1})
    assert not (tmp_path / "r").exists()
    assert list((tmp_path / ".starting").iterdir()) == []
    monkeypatch.undo()
    store = RunStore("r", tmp_path)
    store.create({"status": "running", "n_tasks": 1})
    assert store.manifest()["n_tasks"] == 1


def test_an_existing_run_folder_is_one_line(tmp_path, capsys):
    new_run(tmp_path)
    with pytest.raises(InputError, match="already exists"):
        RunStore("r", tmp_path).create({"status": "running", "n_tasks": 1})
    (tmp_path / "old" / "parts").mkdir(parents=True)  # an older hbench interrupted between mkdir and manifest
    with pytest.raises(InputError, match="has no manifest.json"):
        RunStore("old", tmp_path).create({"status": "running", "n_tasks": 1})
    remove = f"remove it (rm -r {tmp_path / 'old'})"
    for args in (["status", "old"], ["run", "--resume", "old"]):
        rc, out, err = cli(capsys, *args, "--results", str(tmp_path))
        assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and remove in err, (args, err)
