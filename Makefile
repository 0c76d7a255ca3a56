# sandbench: `make demo` runs the quick suite on this host and writes the report;
# `make test` runs the test suite. Both install what is missing first (Debian, as root).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the harness and its tests use. chromium: the report's browser test.
# python3-venv: Debian's python3 needs it for `-m venv`.
APT_PACKAGES := runc crun fio busybox-static mmdebstrap gcc libc6-dev hyperfine chromium \
                python3-venv e2fsprogs iproute2 skopeo

.PHONY: demo test lint deps venv image doctor clean-runs help

help:
	@echo "make demo   install what is missing, build the image, run the quick suite, write the report"
	@echo "make test   install what is missing and run the test suite"

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# Reinstalled only when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/.installed

doctor: deps venv
	$(BIN)/sandbench doctor --fix --runtimes native,runc,crun || true

image: deps venv
	$(BIN)/sandbench image build

demo: deps venv
	$(BIN)/sandbench doctor --fix --runtimes native,runc,crun >/dev/null || true
	$(BIN)/sandbench image build
	$(BIN)/sandbench run --profile quick --runtimes native,runc,crun

lint: venv
	$(BIN)/python -m mypy
	$(BIN)/lint-imports

test: deps venv
	$(BIN)/sandbench doctor --fix --runtimes native,runc,crun >/dev/null || true
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

clean-runs:
	find reports -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
