# The README's commands. `make test` and `make demo` create (or reuse) .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# What this machine serves from local disk; elsewhere `make test TORCH_PINS=` takes pyproject's ranges.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

# Label Studio and datumaro pin many packages (Django, pandas, numpy): each gets its own venv, used
# only by the labelling tests (a live Label Studio on 127.0.0.1; datumaro reads our CVAT XML).
LS_VENV ?= .venv-labelstudio
LS_STAMP := $(LS_VENV)/.installed
DM_VENV ?= .venv-datumaro
DM_STAMP := $(DM_VENV)/.installed

.PHONY: install browser labelstudio datumaro test test-all lint demo bench clean

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

# sentry-sdk 3 dropped an option Label Studio 1.23 passes at start. The database is migrated
# once here (minutes on 2 cores) into template/; each test copies it to a throwaway data dir.
# LS_QUIET: no version check against PyPI, no error reports, no analytics.
LS_QUIET := LABEL_STUDIO_LATEST_VERSION_CHECK=false SENTRY_DSN= FRONTEND_SENTRY_DSN= COLLECT_ANALYTICS=false
$(LS_STAMP):
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LS_VENV)/bin/python -m pip install -q 'label-studio==1.23.2' 'sentry-sdk>=2.16,<3'
	rm -rf $(LS_VENV)/template
	$(LS_QUIET) $(LS_VENV)/bin/label-studio version --data-dir $(LS_VENV)/template >/dev/null
	touch $(LS_STAMP)

labelstudio: $(LS_STAMP)

$(DM_STAMP):
	test -x $(DM_VENV)/bin/python || $(PYTHON) -m venv $(DM_VENV)
	$(DM_VENV)/bin/python -m pip install -q --upgrade pip
	$(DM_VENV)/bin/python -m pip install -q 'datumaro==1.13.12' 'lxml>=5'
	touch $(DM_STAMP)

datumaro: $(DM_STAMP)

# After the fast suite: the live Label Studio round trip (marker labelstudio) and the slow tests
# that the issues ask CI to run (marker ci: UDP/RTSP/HLS streams, kill -9, 2x feed, DDP).
test: $(STAMP) browser labelstudio datumaro
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m "not slow and not labelstudio"
	$(PY) -m pytest -q -m "labelstudio or ci"

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
	rm -rf $(VENV) $(LS_VENV) $(DM_VENV) demo_output runs .pytest_cache .ruff_cache
