# Everything goes through a .venv in the checkout, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-speed bench-scale clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/emkit demo --out demo-output

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_speed --quick
	$(BIN)/python -m benchmarks.bench_missing --quick
	$(BIN)/python -m benchmarks.bench_acceleration --repeats 1

bench-speed: $(STAMP)
	$(BIN)/python -m benchmarks.bench_speed

bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.bench_scale

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
