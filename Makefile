# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/callcenter demo

test: $(STAMP) browser
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check callcenter pbx_adapter workers
	$(BIN)/mypy

browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
	  { echo "installing Debian chromium for the browser tests"; \
	    (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; }

bench: $(STAMP)
	$(BIN)/python bench/phones.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/screen_pop.py
	$(BIN)/python bench/recordings.py
	$(BIN)/python bench/kpi_report.py
	$(BIN)/python bench/import.py
	$(BIN)/python bench/wallboard.py
	$(BIN)/python bench/screen_pop.py --scale-out
	$(BIN)/python bench/ws_memory.py
	$(BIN)/python bench/celery_send.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
