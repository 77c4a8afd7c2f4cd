# ir_toolkit: `make demo` and `make test` do all setup on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP_RUN  := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: demo test lab lint bench sample clean browser

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[test]'
	touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(VENV)/bin/ir-toolkit demo --out demo-case

# The browser tests use Debian's chromium (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
	    echo "note: could not install Debian chromium; browser tests will fail"; }

# The suite runs on every core (pytest-xdist); tests/conftest.py groups the tests so that a module's fixtures
# are built on one worker and hands the slowest groups out first. `PYTEST_ARGS='-m "not slow"'` leaves out
# the slowest tests (for a quick local run; CI runs everything).
PYTEST_ARGS ?=
test: $(STAMP_TEST) browser
	$(VENV)/bin/ruff check ir_toolkit tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:cacheprovider -W error -n auto --dist loadgroup --no-loadscope-reorder --durations=30 $(PYTEST_ARGS)

lint: $(STAMP_TEST)
	$(VENV)/bin/ruff check ir_toolkit tests bench
	$(VENV)/bin/mypy

# JupyterLab opens at the project root (notebooks/, playbooks/, docs/ side by side); as root (a container,
# a forensic VM) it needs --allow-root, added only then.
lab: $(STAMP_RUN)
	$(PIP) install -q -e '.[lab]'
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP_TEST)
	$(PY) -m bench

# The committed sample tenant (data/sample-tenant): one command, same bytes every time.
SAMPLE_ARGS := --seed 558 --users 30 --days 45 --gzip
sample: $(STAMP_RUN)
	rm -rf data/sample-tenant
	$(VENV)/bin/ir-toolkit sample make data/sample-tenant $(SAMPLE_ARGS)

clean:
	rm -rf demo-case .pytest_cache .mypy_cache .ruff_cache
