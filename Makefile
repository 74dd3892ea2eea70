# The README's commands. `make test` and `make demo` create (or reuse) .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# What this machine serves from local disk; elsewhere `make test TORCH_PINS=` takes pyproject's ranges.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install browser test test-all lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS) -e '.[dev,pretrained]'
	touch $(STAMP)

install: $(STAMP)

# The HTML report's browser tests drive Debian's chromium through Playwright (Playwright's own
# browser download is not used). Installed here when missing and we are root (CI); else a hint.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; \
	  else echo "browser tests are skipped without chromium: sudo apt-get install chromium" >&2; fi; }

test: $(STAMP) browser
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
