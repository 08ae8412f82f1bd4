# Quick start: `make run` serves the API on the embedded default (SQLite, photos on local disk, demo data);
# `make test` runs the whole suite. Set TEST_DATABASE_URL to run the suite on PostgreSQL as well.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1

# The embedded default, for development on a laptop: never production settings.
RUN_ENV := HAZARD_ENVIRONMENT=development \
	HAZARD_WECHAT__DEV_LOGIN=true \
	HAZARD_PUBLIC_BASE_URL=http://$(HOST):$(PORT)

.PHONY: run test lint openapi fuzz-api bench-submit bench-geo bench-dashboard bench-load evidence-faults clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(VENV)/.installed
	$(RUN_ENV) $(BIN)/python -m app.cli migrate
	$(RUN_ENV) $(BIN)/python -m app.cli seed-demo
	@echo "API: http://$(HOST):$(PORT)   docs: http://$(HOST):$(PORT)/docs"
	$(RUN_ENV) $(BIN)/uvicorn --factory app.main:create_app --host $(HOST) --port $(PORT)

test: $(VENV)/.installed
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench

openapi: $(VENV)/.installed
	$(BIN)/python -m app.cli openapi --out openapi.yaml

# Hostile input, long: schemathesis over every operation of openapi.yaml with every check (schemathesis.toml), as
# each caller, on SQLite and then on PostgreSQL (FUZZ_DATABASE_URL; scratch databases made and dropped there). The
# suite runs the same test briefly. Figures per caller are printed at the end of each run.
FUZZ_EXAMPLES ?= 20
FUZZ_CALLERS ?= anonymous,alice,hotline,dispatcher,inspector,fire-inspector,head,auditor,payer,admin
FUZZ_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
FUZZ_RUN := $(BIN)/pytest tests/contract/test_schemathesis.py -p no:cacheprovider -s -q \
	--schemathesis-long --schemathesis-examples=$(FUZZ_EXAMPLES) --schemathesis-callers=$(FUZZ_CALLERS)

fuzz-api: $(VENV)/.installed
	TEST_DATABASE_URL= $(FUZZ_RUN)
	TEST_DATABASE_URL=$(FUZZ_DATABASE_URL) $(FUZZ_RUN)

bench-submit: $(VENV)/.installed
	$(BIN)/python bench/submit_reports.py

bench-dashboard: $(VENV)/.installed
	$(BIN)/python bench/dashboard.py

# Ceilings and every endpoint under load (wrk); ARGS=--quick for a smoke run. See bench/load.py.
bench-load: $(VENV)/.installed
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python bench/load.py $(ARGS)

bench-geo: $(VENV)/.installed
	$(BIN)/python bench/geo_lookup.py

# Faults and scale-out (docs/evidence.md): a private PostgreSQL, moto S3, two APIs, two workers, kill -9 x 20.
# As root (the private cluster runs as the postgres OS user). Shorter: FAULTS_ARGS="--duration 40 --kills 5".
evidence-faults: $(VENV)/.installed
	$(BIN)/python bench/faults.py $(FAULTS_ARGS)

clean:
	rm -rf var .pytest_cache .ruff_cache
