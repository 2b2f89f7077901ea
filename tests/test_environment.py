"""The environment as a user meets it: PyTensor's C operations really run on the BLAS
compare/pytensor_setup.py gives them.

In a subprocess: PyTensor reads its flags once, at import, and other tests in this process may already
have imported it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTENSOR_FLAGS", "PYTHONWARNINGS")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


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
