# The two front-door commands: `make demo` (set up, then run Baton) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build (a bare `torch` may pull a multi-GB CUDA build)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Baton in a local Slack in the browser, until Ctrl-C (`make demo DEMO_ARGS="--tour --port 8080"`).
demo: $(STAMP)
	$(BIN)/baton demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check bot models handoff tests bench
	$(BIN)/ruff format --check bot models handoff tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.faq

clean:
	rm -rf $(VENV) .baton
