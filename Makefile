# nmosauth-lite: `make run` sets up and runs the main job, `make test` sets up and runs the tests.
PY ?= python3
SELF := $(firstword $(MAKEFILE_LIST))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv sysdeps run example lanes test test-py test-py313 test-py312 test-pure test-mpy test-arm64 bench bundle clean

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

# The firmware bundle needs only the standard library and the two modules it vendors (pinned:
# tools/build_bundle.py prunes ecdsa by rules written for this release), not the test venv.
VENV_BUNDLE := build/venv-bundle
BUNDLE_STAMP := $(VENV_BUNDLE)/.installed

$(BUNDLE_STAMP):
	$(PY) -m venv $(VENV_BUNDLE)
	$(VENV_BUNDLE)/bin/pip install -q --disable-pip-version-check 'ecdsa==0.19.2' 'six==1.17.0'
	touch $(BUNDLE_STAMP)

# The interpreters devices ship (docs/platforms.md): every lane but pure and mpy runs on one.
#  py     Debian's own python3 (bookworm: 3.11.2, as on Raspberry Pi OS bookworm) in a venv that sees
#         apt's python3-cryptography and python3-ecdsa; pip may not replace them (constraints below)
#  py313  CPython 3.13 (Raspberry Pi OS trixie, Yocto, Buildroot) with PyPI's packages
#  py312  CPython 3.12, the interpreter-sensitive part of the suite (PY312_SET)
#  pure   the newest 3.11 ($(PY)) without cryptography;  mpy  the core on MicroPython
#  arm64  a Debian bookworm arm64 root under qemu-user: Debian's python3 and apt's cryptography
DEB_PY ?= /usr/bin/python3
VENV_DEB := build/venv-debian
DEB_STAMP := $(VENV_DEB)/.installed
DEB_CONSTRAINTS := tests/lanes/debian-constraints.txt
PY312_SET := tests/aio tests/client tests/test_demo.py tests/test_cli_entry.py tests/test_doctor.py

$(DEB_STAMP): pyproject.toml $(DEB_CONSTRAINTS)
	sh tools/sysdeps.sh debian
	rm -rf $(VENV_DEB)
	$(DEB_PY) -m venv --system-site-packages $(VENV_DEB)
	$(VENV_DEB)/bin/python -c 'import cryptography as c; print("cryptography==" + c.__version__)' > $(VENV_DEB)/apt.txt
	$(VENV_DEB)/bin/pip install -q --disable-pip-version-check -c $(DEB_CONSTRAINTS) -c $(VENV_DEB)/apt.txt -e '.[test]'
	$(VENV_DEB)/bin/python -c 'import cryptography, ecdsa, sys; sys.exit(not all(m.__file__.startswith("/usr/lib/python3/") for m in (cryptography, ecdsa)))' || \
	  { echo "test-py: pip replaced apt's cryptography or ecdsa in $(VENV_DEB)" >&2; exit 1; }
	touch $@

# build/venv-3.12, build/venv-3.13: that CPython (tools/pythons.sh finds it) with the test extra
PY313_STAMP := build/venv-3.13/.installed
PY312_STAMP := build/venv-3.12/.installed

build/venv-%/.installed: pyproject.toml
	py=$$(sh tools/pythons.sh $*) && rm -rf build/venv-$* && $$py -m venv build/venv-$*
	build/venv-$*/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

# Every lane runs even when one fails (one flake must not hide the others); one summary line
# per lane at the end, and the exit status is non-zero if any lane failed (tools/lanes.sh). The
# lanes run in three streams side by side, after every venv is set up one at a time (editable
# installs share this tree): a whole Python suite uses about half a core of this 2-core machine
# (it mostly waits on its own servers and subprocesses), the emulated arm64 lane about one. The
# arm64 root is built in the background from the start (build/arm64-root.log); the arm64 lane's
# first step waits for it.
STREAM_A := py pure mpy
STREAM_B := py313 py312
STREAM_C := arm64
LANES := $(STREAM_A) $(STREAM_B) $(STREAM_C)
ARM_PREP := sh tools/arm/root.sh arm64 build/arm64-root
ARM_LOG := build/arm64-root.log
LANE_SETUP := $(DEB_STAMP) $(PY313_STAMP) $(PY312_STAMP) $(PURE_STAMP) $(BUNDLE_STAMP)
INTEROP_PREP := sh tools/interop/install.sh
LANE_LOGS := build/lanes
# through a variable, so `make -n test` only prints this recipe (a line naming $(MAKE) itself runs)
LANE_MAKE = $(MAKE) --no-print-directory -f $(SELF)

lanes:
	@echo $(LANES)

test: venv sysdeps
	@case " $(LANES) " in *" arm64 "*) mkdir -p $(dir $(ARM_LOG)); ($(ARM_PREP)) > $(ARM_LOG) 2>&1 & ;; esac; \
	for s in $(LANE_SETUP); do $(LANE_MAKE) $$s || echo "make test: set-up of $$s failed" >&2; done; \
	$(INTEROP_PREP) >/dev/null 2>&1 || true; \
	sh tools/lanes.sh $(LANE_LOGS) "$(LANE_MAKE)" "$(STREAM_A)" "$(STREAM_B)" "$(STREAM_C)"; \
	r=$$?; wait; exit $$r

# the bundle is built by the `make bundle` venv: apt's ecdsa has no licence text for it to carry
test-py: $(DEB_STAMP) $(BUNDLE_STAMP)
	NMOSAUTH_BUNDLE_PYTHON=$(CURDIR)/$(VENV_BUNDLE)/bin/python $(VENV_DEB)/bin/python -m pytest

test-py313: $(PY313_STAMP)
	build/venv-3.13/bin/python -m pytest

test-py312: $(PY312_STAMP)
	build/venv-3.12/bin/python -m pytest $(PY312_SET)

test-pure: venv $(PURE_STAMP)
	PYTHONPATH=tests/pure NMOSAUTH_PEER_PYTHON=$(CURDIR)/$(BIN)/python \
	  $(VENV_PURE)/bin/python -m pytest -p purelane $$(grep -v '^#' tests/pure/lane.txt)

test-mpy:
	sh tools/mpy/run.sh

# Correctness only: emulated timings mean nothing. Needs root (debootstrap, binfmt_misc, chroot).
test-arm64: $(BUNDLE_STAMP)
	$(VENV_BUNDLE)/bin/python tools/build_bundle.py
	sh tools/arm/lane.sh arm64

bundle: $(BUNDLE_STAMP)
	$(VENV_BUNDLE)/bin/python tools/build_bundle.py $(BUNDLE_FLAGS)

bench: venv
	sh tools/sysdeps.sh bench
	$(BIN)/pip install -q --disable-pip-version-check -r tools/bench-requirements.txt
	$(BIN)/python tools/bench_all.py --write

clean:
	rm -rf $(VENV) $(VENV_PURE) build dist *.egg-info tools/mpy/node_modules tools/interop/node_modules
