# hbench: `make setup` then `make test`. Everything runs from the virtualenv in .venv.
PY := .venv/bin/python
PYTEST := $(PY) -m pytest

.PHONY: setup test test-slow bench bench-quick bench-speed bench-speed-compare report clean

setup:
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	bash scripts/install_r.sh $(PY)

test:
	$(PYTEST) -q -m "not slow and not bench" tests

test-slow:
	$(PYTEST) -q -m "slow" tests

HBENCH := $(PY) -m compare

bench:
	$(HBENCH) run default --run-id default-$$(date +%Y%m%d-%H%M%S)
	$(HBENCH) report latest

bench-quick:
	$(HBENCH) run quick --run-id quick-$$(date +%Y%m%d-%H%M%S)
	$(HBENCH) report latest

bench-speed:
	$(PYTEST) -q -m bench tests/benchmarks --benchmark-autosave

bench-speed-compare:
	$(PYTEST) -q -m bench tests/benchmarks --benchmark-compare

report:
	$(HBENCH) report latest

clean:
	rm -rf build .pytest_cache .benchmarks
