# nmosauth-lite: `make run` sets up and runs the main job, `make test` sets up and runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv sysdeps run example test test-py test-pure test-mpy bench bundle clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The pure lane: a second venv WITHOUT cryptography, where the package must run on its pure backend.
VENV_PURE := .venv-pure
PURE_STAMP := $(VENV_PURE)/.installed
PURE_TOOLS := pytest pytest-timeout hypothesis dnspython aiohttp flask uvicorn websockets ecdsa

$(PURE_STAMP): pyproject.toml
	$(PY) -m venv $(VENV_PURE)
	$(VENV_PURE)/bin/pip install -q --disable-pip-version-check $(PURE_TOOLS)
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

test: venv sysdeps test-py test-pure test-mpy

test-py: venv
	$(BIN)/python -m pytest

test-pure: venv $(PURE_STAMP)
	PYTHONPATH=tests/pure NMOSAUTH_PEER_PYTHON=$(CURDIR)/$(BIN)/python \
	  $(VENV_PURE)/bin/python -m pytest -p purelane $$(grep -v '^#' tests/pure/lane.txt)

test-mpy:
	sh tools/mpy/run.sh

bundle: venv
	$(BIN)/python tools/build_bundle.py

bench: venv
	sh tools/sysdeps.sh bench
	$(BIN)/python tools/bench_all.py --write

clean:
	rm -rf $(VENV) $(VENV_PURE) build dist *.egg-info tools/mpy/node_modules
