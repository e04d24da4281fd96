# Two commands set everything up on a fresh machine:
#   make demo   creates .venv, installs the map stack, runs the demo basin (writes demo-output/)
#               (make demo-maha-oya: the same on the packaged real basin, writes maha-oya-output/)
#   make test   creates .venv, installs everything (ML stack, Label Studio client, Dask, dev tools) and a
#               Label Studio server in its own .venv-labelstudio (its pins fight the ML stack), runs the tests
# Both need only Python 3.11 and the package registries.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check --progress-bar off
DEMO_OUT ?= demo-output
MAHA_OYA_OUT ?= maha-oya-output
PYTEST_ARGS ?=

.PHONY: demo demo-maha-oya test lint check clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# The editable install is a link tree (setuptools' strict mode, so that mypy sees one package,
# plastic_hotspots): a module added or removed needs it made again. The package folders' times
# change when a file is added or removed there, and relink it (a few seconds, no downloads).
PACKAGE_DIRS := $(shell find core annotations training detector maps -type d -not -name __pycache__ 2>/dev/null)

$(VENV)/.linked: $(VENV)/.maps-installed $(PACKAGE_DIRS)
	$(PIP) -q --no-deps -e . --config-settings editable_mode=strict
	@touch $@

$(VENV)/.maps-installed: $(BIN)/python pyproject.toml
	$(PIP) -q -e . --config-settings editable_mode=strict
	@touch $@

LS_VENV ?= .venv-labelstudio
LABEL_STUDIO_VERSION ?= 1.23.2
# sentry-sdk 3 drops options Label Studio 1.23 passes at start (TypeError: Unknown option 'send_default_pii').
LABEL_STUDIO_PINS ?= 'sentry-sdk<3'

$(LS_VENV)/bin/label-studio:
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar off -q label-studio==$(LABEL_STUDIO_VERSION) $(LABEL_STUDIO_PINS)

$(VENV)/.all-installed: $(BIN)/python pyproject.toml
	$(PIP) -q -e '.[all,dev]' --config-settings editable_mode=strict
	@touch $@ $(VENV)/.maps-installed

demo: $(VENV)/.maps-installed $(VENV)/.linked
	$(BIN)/plastic-hotspots demo --out $(DEMO_OUT)

demo-maha-oya: $(VENV)/.maps-installed $(VENV)/.linked
	$(BIN)/plastic-hotspots demo --basin maha-oya --out $(MAHA_OYA_OUT)

test: $(VENV)/.all-installed $(VENV)/.linked $(LS_VENV)/bin/label-studio
	PLASTIC_HOTSPOTS_LABEL_STUDIO=$(abspath $(LS_VENV))/bin/label-studio $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.all-installed $(VENV)/.linked
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

clean:
	rm -rf $(VENV) $(LS_VENV) $(DEMO_OUT) $(MAHA_OYA_OUT) build .pytest_cache .mypy_cache .ruff_cache
