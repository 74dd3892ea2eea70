# The README's commands. `make test` and `make demo` create (or reuse) .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# What this machine serves from local disk; elsewhere `make test TORCH_PINS=` takes pyproject's ranges.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install test test-all lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS) -e '.[dev,pretrained]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: $(STAMP)
	$(VENV)/bin/video-lstm demo --out_dir demo_output

bench: $(STAMP)
	$(PY) tools/bench_decode.py
	$(PY) tools/bench_models.py
	$(PY) tools/bench_pipeline.py

clean:
	rm -rf $(VENV) demo_output runs .pytest_cache .ruff_cache
