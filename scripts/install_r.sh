#!/usr/bin/env bash
# Install R + lme4 from Debian (the reference engine), the R packages of the R engines and the rpy2
# bridge, when this machine allows it. Only what is missing is installed: an R package counts as present
# when R finds it, wherever it came from. Without apt-get or root it says so in one line and returns 0:
# every other engine still works.
set -u
PY=${1:-.venv/bin/python}
HERE=$(dirname "$0")
# lme4: the reference engine. glmmTMB, rstanarm and brms: the R engines (brms compiles need libboost-dev's
# headers, as Debian's r-cran-bh ships none); lmerTest + pbkrtest: Satterthwaite / Kenward-Roger df; numDeriv:
# the Hessian of lme4's deviance behind its Wald intervals of SDs, cors and sigma; clubSandwich: lme4's
# cluster-robust CR2 standard errors (robust = true); nlme, mlmRev, HSAUR3: datasets of `hbench data`
# (lme4, rstanarm, brms and glmmTMB ship the others).
# Debian names them r-cran-<lower-case name>.
R_PACKAGES="lme4 numDeriv glmmTMB lmerTest pbkrtest clubSandwich rstanarm brms nlme mlmRev HSAUR3"
debs=()
if command -v Rscript >/dev/null 2>&1; then
  # system.file() finds a package without loading it (loading brms takes seconds)
  absent=$(Rscript -e 'p <- commandArgs(TRUE); cat(p[!nzchar(vapply(p, function(x) system.file(package = x), ""))])' \
    $R_PACKAGES 2>/dev/null) || absent=$R_PACKAGES
else
  debs+=(r-base-core)
  absent=$R_PACKAGES
fi
for p in $absent; do
  debs+=("r-cran-${p,,}")
done
# libboost-dev: C++ headers that R packages compiling Stan or TMB models at run time include
bash "$HERE/install_debian.sh" "R and the R engines" "${debs[@]}" libboost-dev
if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e 'quit(status = !nzchar(system.file(package = "lme4")))' >/dev/null 2>&1; then
  echo "setup: R with lme4 is not available; the lme4 reference engine will report itself unavailable"
  exit 0
fi
# rpy2 3.6 wheels need R >= 4.5 symbols (R_getVar): with Debian's R 4.2 its import fails, so pin 3.5
"$PY" -m pip install -q 'rpy2>=3.5,<3.6' || echo "setup: rpy2 did not install; the lme4 engine will report itself unavailable"
