# nmosauth-lite: `make run` sets up and runs the main job, `make test` sets up and runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv sysdeps run test test-py test-mpy bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests use (dnsmasq for DNS-SD, curl for interop, node for the MicroPython lane).
sysdeps:
	sh tools/sysdeps.sh

# Main job on embedded defaults: verify the IS-10 example token (until `demo` exists).
run: venv
	$(BIN)/nmosauth-lite verify --jwks nmosauth_lite/data/is10-example-jwks.json \
	  --audience node1.example.com --now 1548779500 \
	  --path /x-nmos/connection/v1.1/single/senders --token - < nmosauth_lite/data/is10-example-token.txt

test: venv sysdeps test-py test-mpy

test-py: venv
	$(BIN)/python -m pytest

test-mpy:
	sh tools/mpy/run.sh

bench: venv
	sh tools/sysdeps.sh bench
	$(BIN)/python tools/bench_validate.py

clean:
	rm -rf $(VENV) build dist *.egg-info tools/mpy/node_modules
