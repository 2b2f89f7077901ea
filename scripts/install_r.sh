#!/usr/bin/env bash
# Install R + lme4 from Debian (the reference engine) and the rpy2 bridge, when this machine allows it.
# Without apt-get or root it says so in one line and returns 0: every other engine still works.
set -u
PY=${1:-.venv/bin/python}
if ! command -v R >/dev/null 2>&1 || ! Rscript -e 'quit(status = !requireNamespace("lme4", quietly = TRUE))' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "installing R and lme4 from Debian (r-base-core r-cran-lme4) ..."
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq r-base-core r-cran-lme4 >/dev/null \
      || { echo "setup: apt-get could not install R; skipping the lme4 reference engine"; exit 0; }
  else
    echo "setup: no apt-get or not root; skipping R and the lme4 reference engine"
    exit 0
  fi
fi
# the optional R engines glmmtmb, rstanarm and brms (FINDINGS: seconds once R is there; brms compiles need
# libboost-dev's headers, as Debian's r-cran-bh ships none)
if ! Rscript -e 'quit(status = !all(sapply(c("glmmTMB", "rstanarm", "brms"), requireNamespace, quietly = TRUE)))' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "installing glmmTMB, rstanarm and brms from Debian ..."
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq r-cran-glmmtmb r-cran-rstanarm r-cran-brms libboost-dev >/dev/null \
      || echo "setup: apt-get could not install glmmTMB/rstanarm/brms; those engines will report themselves unavailable"
  else
    echo "setup: no apt-get or not root; the glmmtmb, rstanarm and brms engines will report themselves unavailable"
  fi
fi
# rpy2 3.6 wheels need R >= 4.5 symbols (R_getVar): with Debian's R 4.2 its import fails, so pin 3.5
"$PY" -m pip install -q 'rpy2>=3.5,<3.6' || echo "setup: rpy2 did not install; the lme4 engine will report itself unavailable"
