# Catalog Agents. `make test` and `make demo` set up everything they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help
help:
	@echo "make demo     catalog a sample database twice, changing it in between (embedded defaults)"
	@echo "make screenshots  the last demo's pages as PNGs in docs/images (headless Chromium)"
	@echo "make check    the fast tier: lint, types and every test that needs no Docker or database"
	@echo "make test     run the whole test suite (installs and starts Docker, the databases, the image)"
	@echo "make bench    run the benchmarks under bench/, one JSON figure a line"
	@echo "make load     200 catalogs in 20 s on two orchestrators and two managers (bench/load.py)"
	@echo "make chaos    the fault suite: kill -9 and cut real parts mid-run (tests/chaos/)"
	@echo "make serve    the three services on their default ports, on embedded defaults (Ctrl-C stops)"
	@echo "make sample   the demo's shop in the local PostgreSQL and MariaDB, for the README's examples"
	@echo "make protos   regenerate the Python code and stubs from protos/"
	@echo "make lint     ruff, mypy, buf lint and the generated-code check"
	@echo "make image    build the sandbox image (skipped when one exists for this content of sandbox/)"

# --- the Python environment -------------------------------------------------------------------
$(STAMP): pyproject.toml sandbox/requirements.txt scripts/ensure_host_packages.sh
	bash scripts/ensure_host_packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The image's exact versions as constraints (pip takes no extras there).
	sed 's/\[[^]]*\]//' sandbox/requirements.txt > $(VENV)/constraints.txt
	$(BIN)/pip install --quiet -c $(VENV)/constraints.txt -e '.[dev]'
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP)

# --- contracts --------------------------------------------------------------------------------
.PHONY: protos protos-check buf-lint buf-breaking
protos: $(STAMP)
	bash scripts/gen_protos.sh

protos-check: $(STAMP)
	bash scripts/gen_protos.sh --check

buf-lint:
	bash scripts/buf.sh lint

buf-breaking:
	bash scripts/buf.sh breaking

# --- checks -----------------------------------------------------------------------------------
.PHONY: lint lint-code check fast-tests
lint: lint-code protos-check buf-lint buf-breaking

lint-code: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Tests that need a real part carry its marker (tests/conftest.py adds them by fixture).
FAST_TESTS := not docker and not postgres and not mysql

# The fast tier, for every change: under a minute, and no Docker or database needed. The
# checks run side by side (the tests mostly wait), each one's output kept together.
check: $(STAMP)
	@$(MAKE) --no-print-directory -j3 --output-sync=target lint-code protos-check buf-lint fast-tests

fast-tests: $(STAMP)
	$(BIN)/pytest -q -m "$(FAST_TESTS)" $(PYTEST_ARGS)

# --- real parts the tests talk to -------------------------------------------------------------
.PHONY: docker databases image
docker:
	bash scripts/ensure_docker.sh

databases:
	bash scripts/ensure_databases.sh

image: docker
	bash scripts/build_image.sh

# --- the contract with users ------------------------------------------------------------------
.PHONY: test
test: $(STAMP) lint databases image
	$(BIN)/pytest -q $(PYTEST_ARGS)

.PHONY: demo
demo: $(STAMP)
	$(BIN)/python demo/run_demo.py

# The demo's pages in headless Chromium, as docs/images/*.png for the README (after make demo).
.PHONY: screenshots
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

.PHONY: serve
serve: $(STAMP)
	$(BIN)/python scripts/serve.py

# The demo's shop in PostgreSQL (schema shop) and MariaDB (database shop), read by catalog_reader.
.PHONY: sample
sample: $(STAMP) databases
	$(BIN)/python scripts/sample.py

# The fault suite (tests/chaos/): kills and cuts real parts mid-run; prints chaos.cases_passed.
# CATALOG_CHAOS_S3_DOWN_S shortens the S3 outage (30 s); CATALOG_CHAOS_DOCKERD=1 adds the
# dockerd restart (never on a machine whose engine others use).
.PHONY: chaos
chaos: $(STAMP) databases image
	$(BIN)/pytest -q -m chaos tests/chaos $(PYTEST_ARGS)

# The load test (bench/load.py): LOAD_COUNT catalogs (200) in LOAD_SUBMIT_S (20 s) against two
# orchestrators on PostgreSQL and two managers; one JSON figure a line.
.PHONY: load
load: $(STAMP) databases image
	$(BIN)/python bench/load.py

.PHONY: bench
bench: $(STAMP) databases image
	@set -e; for b in bench/bench_*.py; do $(BIN)/python $$b; done
