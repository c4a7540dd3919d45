# nmosauth-lite: `make run` sets up and runs the main job, `make test` sets up and runs the tests.
PY ?= python3
SELF := $(firstword $(MAKEFILE_LIST))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv sysdeps run example test test-py test-pure test-mpy bench bundle clean

# Progress for the long first run (issue 22): what is being installed, before each silent step.
TEST_EXTRA = $(PY) -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb")); print(" ".join(r.split(">")[0].split("=")[0] for r in d["project"]["optional-dependencies"]["test"]))'

$(STAMP): pyproject.toml
	@echo "make: setting up $(VENV) (the first run, or pyproject.toml changed: about a minute)"
	PY=$(PY) sh tools/sysdeps.sh venv
	@echo "make: [1/2] creating the virtual environment $(VENV) with $(PY)"
	$(PY) -m venv $(VENV)
	@echo "make: [2/2] pip is downloading and installing nmosauth-lite (editable) and its [test] extra:"
	@echo "make:       $$($(TEST_EXTRA) 2>/dev/null || echo 'see pyproject.toml')"
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@echo "make: $(VENV) is ready ($(BIN)/nmosauth-lite)"
	touch $(STAMP)

venv: $(STAMP)

# The pure lane: a second venv WITHOUT cryptography, where the package must run on its pure backend.
# Its tools are pinned to exact versions (with their dependencies) in PURE_TOOLS.
VENV_PURE := .venv-pure
PURE_STAMP := $(VENV_PURE)/.installed
PURE_TOOLS := tests/pure/requirements.txt

$(PURE_STAMP): pyproject.toml $(PURE_TOOLS)
	PY=$(PY) sh tools/sysdeps.sh venv
	$(PY) -m venv $(VENV_PURE)
	$(VENV_PURE)/bin/pip install -q --disable-pip-version-check -r $(PURE_TOOLS)
	$(VENV_PURE)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	@if $(VENV_PURE)/bin/python -c 'import cryptography' 2>/dev/null; then echo "test-pure: cryptography in $(VENV_PURE)" >&2; exit 1; fi
	touch $(PURE_STAMP)

# Debian packages the tests use (dnsmasq for DNS-SD, curl for interop, node for the MicroPython lane).
sysdeps:
	sh tools/sysdeps.sh

# Main job on embedded defaults: the IS-10 story on loopback (authorization server, protected Node, client).
run: venv
	$(BIN)/nmosauth-lite demo

# The offline check of the IS-10 specification's own example token.
example: venv
	$(BIN)/nmosauth-lite verify --jwks nmosauth_lite/data/is10-example-jwks.json \
	  --audience node1.example.com --now 1548779500 \
	  --path /x-nmos/connection/v1.1/single/senders --token - < nmosauth_lite/data/is10-example-token.txt

# Every lane runs even when one fails (one flake must not hide the others); one summary line
# per lane at the end, and the exit status is non-zero if any lane failed.
LANES := py pure mpy

test: venv sysdeps
	@summary=""; failed=0; \
	for lane in $(LANES); do \
	  t0=$$(date +%s); \
	  if $(MAKE) --no-print-directory -f $(SELF) test-$$lane; then r=passed; else r=FAILED; failed=1; fi; \
	  summary="$$summary$$(printf 'make test: lane %-4s %s (%s s)' $$lane $$r $$(( $$(date +%s) - t0 )))\n"; \
	done; \
	printf "$$summary"; \
	if [ $$failed = 0 ]; then echo "make test: every lane passed"; else echo "make test: FAILED" >&2; exit 1; fi

test-py: venv
	$(BIN)/python -m pytest

test-pure: venv $(PURE_STAMP)
	PYTHONPATH=tests/pure NMOSAUTH_PEER_PYTHON=$(CURDIR)/$(BIN)/python \
	  $(VENV_PURE)/bin/python -m pytest -p purelane $$(grep -v '^#' tests/pure/lane.txt)

test-mpy:
	sh tools/mpy/run.sh

# The firmware bundle needs only the standard library and the two modules it vendors (pinned:
# tools/build_bundle.py prunes ecdsa by rules written for this release), not the test venv.
VENV_BUNDLE := build/venv-bundle
BUNDLE_STAMP := $(VENV_BUNDLE)/.installed

$(BUNDLE_STAMP):
	$(PY) -m venv $(VENV_BUNDLE)
	$(VENV_BUNDLE)/bin/pip install -q --disable-pip-version-check 'ecdsa==0.19.2' 'six==1.17.0'
	touch $(BUNDLE_STAMP)

bundle: $(BUNDLE_STAMP)
	$(VENV_BUNDLE)/bin/python tools/build_bundle.py $(BUNDLE_FLAGS)

bench: venv
	sh tools/sysdeps.sh bench
	$(BIN)/pip install -q --disable-pip-version-check -r tools/bench-requirements.txt
	$(BIN)/python tools/bench_all.py --write

clean:
	rm -rf $(VENV) $(VENV_PURE) build dist *.egg-info tools/mpy/node_modules tools/interop/node_modules
