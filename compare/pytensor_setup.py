"""Point PyTensor at the OpenBLAS that scipy's wheel already ships, before PyTensor is first imported.

Why: PyTensor looks for a BLAS to link its C ops against the first time it reads `blas__ldflags`
(PyMC's graph rewrites read it even for nutpie's numba backend). It looks for MKL, Accelerate,
`libblas.so` + `libcblas.so`, or `libopenblas.so` + gfortran + gomp. A pip environment has none of these
(Debian ships cblas inside libblas, not as libcblas.so), so every process spends ~0.33 s on failed
test compiles and prints a five-line "could not link to a BLAS installation ... severely degraded"
warning: once per `hbench` command and once per worker.

The BLAS is there all along: scipy's manylinux wheel bundles OpenBLAS as
`scipy.libs/libscipy_openblas-<hash>.so`, 32-bit integers (LP64) like the Fortran interface
PyTensor calls, with every routine exported under a `scipy_` prefix (`scipy_dgemm_`). So the flags
link that library and rename the routines PyTensor's C code calls with `-D` (numpy's own copy,
`libscipy_openblas64_`, is ILP64 and would not fit PyTensor's `int` arguments). The library is
the one numpy/scipy code in this process already uses, so `threadpoolctl` limits it with the rest.

The library is passed as `-l:<file>` with `-Wl,-L<dir>` rather than `-L<dir>`: PyTensor's GEMM ops
use C code only when `blas__ldflags` names an `-l` library, and it logs a warning when a `-L`
directory holds no `lib<name>.so` for the names given.

A BLAS the user configured (`blas__ldflags` in PYTENSOR_FLAGS or a .pytensorrc) always wins. Where
scipy has no bundled OpenBLAS (built from source, conda, not Linux), nothing is set and PyTensor's
own search runs as before (it finds conda's MKL or a system OpenBLAS).

Import this module before anything imports pytensor (compare/estimators/pymc_nutpie.py does, first
thing). The setting travels in PYTENSOR_FLAGS, so worker processes and subprocesses inherit it.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shlex
import sys
from pathlib import Path

# The reference BLAS routines (levels 1-3) that PyTensor's C header declares (pytensor/tensor/
# blas_headers.py, 2.x), every one exported by scipy's OpenBLAS as scipy_<name>_. Its ops call
# only ?gemm_, ?gemv_, ?ger_ and ?dot_ today; renaming the whole set keeps a future op that calls
# another routine from building a module that cannot load (undefined `dscal_`).
BLAS_ROUTINES = """
srotg srotmg srot srotm sswap sscal scopy saxpy sdot sgemv sgbmv strmv stbmv stpmv strsv stbsv stpsv
ssymv ssbmv sspmv sger ssyr sspr ssyr2 sspr2 sgemm ssymm ssyrk ssyr2k strmm strsm
drotg drotmg drot drotm dswap dscal dcopy daxpy ddot dgemv dgbmv dtrmv dtbmv dtpmv dtrsv dtbsv dtpsv
dsymv dsbmv dspmv dger dsyr dspr dsyr2 dspr2 dgemm dsymm dsyrk dsyr2k dtrmm dtrsm
cswap cscal csscal ccopy caxpy cgemv cgbmv ctrmv ctbmv ctpmv ctrsv ctbsv ctpsv chemv chbmv chpmv
cgeru cgerc cher chpr cher2 chpr2 cgemm csymm csyrk csyr2k chemm cherk cher2k ctrmm ctrsm
zswap zscal zdscal zcopy zaxpy zgemv zgbmv ztrmv ztbmv ztpmv ztrsv ztbsv ztpsv zhemv zhbmv zhpmv
zgeru zgerc zher zhpr zher2 zhpr2 zgemm zsymm zsyrk zsyr2k zhemm zherk zher2k ztrmm ztrsm
xerbla
""".split()


def scipy_openblas() -> Path | None:
    """scipy's bundled LP64 OpenBLAS (manylinux wheels), found without importing scipy; None if absent."""
    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.origin:
        return None
    libs = Path(spec.origin).parent.parent / "scipy.libs"
    found = sorted(p for p in libs.glob("libscipy_openblas*.so") if "openblas64" not in p.name)
    return found[0] if found else None


def blas_ldflags(lib: Path) -> str:
    """PyTensor `blas__ldflags` that link `lib` (scipy's OpenBLAS) and map BLAS names onto its prefix."""
    renames = " ".join(f"-D{name}_=scipy_{name}_" for name in BLAS_ROUTINES)
    return f"-Wl,-L{lib.parent} -Wl,-rpath,{lib.parent} -l:{lib.name} {renames}"


def user_configured() -> bool:
    """True when the user chose blas__ldflags themselves (PYTENSOR_FLAGS or a .pytensorrc file)."""
    if "blas__ldflags" in os.environ.get("PYTENSOR_FLAGS", ""):
        return True
    rc = configparser.RawConfigParser()
    try:  # the files PyTensor reads (pytensor.configparser.config_files_from_pytensorrc)
        rc.read([Path(p).expanduser() for p in os.getenv("PYTENSORRC", "~/.pytensorrc").split(os.pathsep)])
    except configparser.Error:
        return False  # PyTensor will report its own config file's problem
    return rc.has_option("blas", "ldflags")


def configure() -> str | None:
    """Put scipy's OpenBLAS into PYTENSOR_FLAGS unless the user set a BLAS or pytensor is already
    imported (then it is too late: the flags are read once). Returns the flags set, or None."""
    if "pytensor" in sys.modules or user_configured():
        return None
    lib = scipy_openblas()
    # PyTensor splits the flags on whitespace (and PYTENSOR_FLAGS on commas, which the quotes protect)
    if lib is None or any(c.isspace() or c in "'\"" for c in str(lib)):
        return None
    flags = blas_ldflags(lib)
    current = os.environ.get("PYTENSOR_FLAGS", "").strip().strip(",")
    os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [current, f"blas__ldflags={shlex.quote(flags)}"]))
    return flags


configure()
