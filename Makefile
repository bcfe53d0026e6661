# Everything goes through a .venv in the checkout, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs docs-check bench bench-speed bench-scale clean

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
	$(MAKE) --no-print-directory docs
	$(BIN)/python docs/check_site.py docs/_build/html

# The documentation site, offline, warnings as errors: docs/_build/html/index.html
docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

# The built site in headless Chromium (Debian package chromium): links, images, screenshots
docs-check: docs
	$(BIN)/python docs/check_site.py docs/_build/html --browser

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_speed --quick
	$(BIN)/python -m benchmarks.bench_missing --quick
	$(BIN)/python -m benchmarks.bench_families --quick
	$(BIN)/python -m benchmarks.bench_acceleration --repeats 1

bench-speed: $(STAMP)
	$(BIN)/python -m benchmarks.bench_speed

bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.bench_scale

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info docs/_build docs/auto_examples docs/generated
