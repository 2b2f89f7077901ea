# hbench: `make test` and `make bench` work from a fresh clone; each first brings the environment up to date.
# Everything runs from the virtualenv in .venv.
# CmdStan (the stan engine's faster backend): CMDSTAN, else cmdstanpy's installer, else built from the source
# tarball HBENCH_CMDSTAN_SRC names (see scripts/install_cmdstan.sh); without any, the stan engine uses PyStan.
PY := .venv/bin/python
PYTEST := $(PY) -m pytest
HBENCH := $(PY) -m compare
# Set-up is done when this stamp is newer than everything that decides what set-up installs. It lives inside
# .venv, so deleting .venv also redoes the set-up; when it is current, targets start at once.
STAMP := .venv/.hbench-setup
SETUP_INPUTS := pyproject.toml scripts/install_r.sh scripts/install_debian.sh scripts/install_cmdstan.sh \
	scripts/assemble_cmdstan.sh Makefile

.PHONY: setup lint test test-slow test-cluster bench bench-quick bench-speed bench-speed-compare report clean

$(STAMP): $(SETUP_INPUTS)
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	bash scripts/install_r.sh $(PY)
	bash scripts/install_cmdstan.sh $(PY)
	command -v chromium >/dev/null 2>&1 || bash scripts/install_debian.sh "the report's real-browser test" chromium
	touch $@

# set up again even when the stamp is current (e.g. after installing R or chromium by other means)
setup:
	rm -f $(STAMP)
	$(MAKE) --no-print-directory $(STAMP)

# lint and format check (ruff) and type check (mypy) of compare/, configured in pyproject.toml
lint: $(STAMP)
	$(PY) -m ruff check compare
	$(PY) -m ruff format --check compare
	$(PY) -m mypy

test: lint
	$(PYTEST) -q -m "not slow and not bench and not cluster" tests

# --executor slurm against a real SLURM on localhost (root: munged, slurmctld and one slurmd, started by the tests);
# includes the quick suite through SLURM against a local run (minutes)
test-cluster: $(STAMP)
	bash scripts/install_debian.sh "the SLURM executor's tests" slurmctld slurmd slurm-client munge
	$(PYTEST) -q -m cluster tests/test_cluster.py

test-slow: $(STAMP)
	$(PYTEST) -q -m "slow and not cluster" tests

bench: $(STAMP)
	$(HBENCH) run default --run-id default-$$(date +%Y%m%d-%H%M%S)
	$(HBENCH) report latest

bench-quick: $(STAMP)
	$(HBENCH) run quick --run-id quick-$$(date +%Y%m%d-%H%M%S)
	$(HBENCH) report latest

bench-speed: $(STAMP)
	$(PYTEST) -q -m bench tests/benchmarks --benchmark-autosave

bench-speed-compare: $(STAMP)
	$(PYTEST) -q -m bench tests/benchmarks --benchmark-compare

report: $(STAMP)
	$(HBENCH) report latest

clean:
	rm -rf build .pytest_cache .benchmarks
