"""The environment as a user meets it: an `hbench` command that loads the pymc engine prints no library
warning block, and PyTensor's C operations really run on the BLAS compare/pytensor_setup.py gives them.

Both run in a subprocess: PyTensor reads its flags once, at import, warnings filters are per process, and
other tests in this process may already have imported PyTensor."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# PyTensor looks for a BLAS (and warns when it finds none) the first time blas__ldflags is read; PyMC's
# graph rewrites read it at the first model compile. Reading it here shows the same without compiling.
CLI_THEN_READ_BLAS = ("import sys; from compare.cli import main; rc = main(sys.argv[1:]); "
                      "import pytensor; pytensor.config.blas__ldflags; sys.exit(rc)")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTENSOR_FLAGS", "PYTHONWARNINGS")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_command_loading_the_pymc_engine_prints_no_library_warning(tmp_path):
    """Fails on PyTensor's BLAS block (without compare/pytensor_setup.py) and on ArviZ's refactor notice
    (without compare/quiet.py): ArviZ prints that once a day per user cache, so the command gets a new one."""
    data = tmp_path / "d.csv"
    data.write_text("g,x,y\n" + "".join(f"g{i % 4},{i},{i % 3}\n" for i in range(24)))
    # --engine pymc imports the engine (PyMC, PyTensor, ArviZ, nutpie) to check it is available; the second
    # engine, which cannot fit a gaussian model, then stops the command before any model is compiled: exit 2
    # and its error on stderr.
    res = subprocess.run([sys.executable, "-c", CLI_THEN_READ_BLAS, "fit", str(data), "--formula",
                          "y ~ x + (1 | g)", "--engine", "pymc", "--engine", "bayesmixedglm-map"],
                         cwd=tmp_path, env=_env(XDG_CACHE_HOME=str(tmp_path / "cache")), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert (tmp_path / "cache" / "arviz").is_dir()  # ArviZ was imported, and had its notice to give
    assert "BLAS" not in res.stderr and "Warning" not in res.stderr, res.stderr
    # the command's own error closes stderr (a fresh cache may add matplotlib's one-line font-cache notice)
    assert res.stderr.strip().splitlines()[-1].startswith("hbench: error: engine 'bayesmixedglm-map' cannot fit")


PROBE = """
import numpy as np
import compare.pytensor_setup as setup
import pytensor
import pytensor.tensor as pt
assert pytensor.config.blas__ldflags, "no BLAS configured"
assert setup.scipy_openblas() is None or setup.scipy_openblas().name in pytensor.config.blas__ldflags
A, B = pt.dmatrix("A"), pt.dmatrix("B")
x, y = pt.dvector("x"), pt.dvector("y")
f = pytensor.function([A, B, x, y], [pt.dot(A, x) + 2 * y, pt.dot(A, B), pt.outer(y, x) + A], mode="FAST_RUN")
ops = {type(node.op).__name__ for node in f.maker.fgraph.apply_nodes}
# CGemv and CGer replace Gemv/Ger only when blas__ldflags is set; Dot22 has C code (dgemm_) only when the
# flags name an -l library, and otherwise computes with numpy
assert {"CGemv", "CGer", "Dot22"} <= ops, ops
dot22 = next(n.op for n in f.maker.fgraph.apply_nodes if type(n.op).__name__ == "Dot22")
assert dot22.c_libraries(), "Dot22 has no BLAS library to call"
rng = np.random.default_rng(0)
a, b, xv, yv = rng.normal(size=(40, 30)), rng.normal(size=(30, 20)), rng.normal(size=30), rng.normal(size=40)
got = f(a, b, xv, yv)
for g, want in zip(got, [a @ xv + 2 * yv, a @ b, np.outer(yv, xv) + a]):
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12)
print("ok")
"""


def test_pytensor_c_blas_ops_link_and_compute(tmp_path):
    """The flags must link, not just quiet the warning: C GEMV/GEMM/GER modules are built against them
    (with g++, cached in PyTensor's compile directory) and must match numpy."""
    if shutil.which("g++") is None:
        pytest.skip("no g++: PyTensor has no C backend here, so no BLAS to link")
    res = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]
    assert "BLAS" not in res.stderr and "Warning" not in res.stderr, res.stderr


def test_a_blas_the_user_chose_wins(tmp_path, monkeypatch):
    from compare import pytensor_setup

    monkeypatch.delenv("PYTENSOR_FLAGS", raising=False)
    monkeypatch.setenv("PYTENSORRC", str(tmp_path / "none"))
    assert not pytensor_setup.user_configured()
    monkeypatch.setenv("PYTENSOR_FLAGS", "floatX=float32,blas__ldflags=-lmkl_rt")
    assert pytensor_setup.user_configured()
    monkeypatch.delenv("PYTENSOR_FLAGS")
    (tmp_path / "rc").write_text("[global]\nfloatX = float64\n\n[blas]\nldflags = -lopenblas\n")
    monkeypatch.setenv("PYTENSORRC", str(tmp_path / "rc"))
    assert pytensor_setup.user_configured()
