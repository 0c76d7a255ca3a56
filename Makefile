# sandbench: `make demo` runs the quick suite on this host and writes the report;
# `make test` runs the test suite. Both install what is missing first (Debian, as root).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the harness and its tests use. chromium: the report's browser test.
# python3-venv: Debian's python3 needs it for `-m venv`. qemu-system-x86, qemu-utils: the qemu
# runtime; kmod (depmod): the guest's initramfs. The guest kernel is fetched with apt-get
# download, not installed. openssh-server: the real sshd the SSH node-facts tests talk to.
APT_PACKAGES := runc crun fio busybox-static mmdebstrap gcc libc6-dev hyperfine chromium \
                python3-venv e2fsprogs iproute2 skopeo qemu-system-x86 qemu-utils kmod \
                openssh-server

# The test cluster (make test-cluster): containerd, CNI plugins, iptables (its egress guard),
# openssl (its CA), curl (health checks). Go itself comes with the machine (Debian's is too old).
CLUSTER_PACKAGES := containerd containernetworking-plugins iptables openssl curl

.PHONY: demo test test-cluster lint deps cluster-deps apt-install venv image doctor clean-runs help

help:
	@echo "make demo   install what is missing, build the image, run the quick suite, write the report"
	@echo "make test   install what is missing and run the test suite"
	@echo "make test-cluster   build Kubernetes v1.34.4 (cached), bring up the test cluster, run the"
	@echo "                    Kubernetes tests against it, tear it down"

deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

cluster-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(CLUSTER_PACKAGES)"

apt-install:
	@# apt-get download (the guest kernel) needs package lists even when nothing is missing.
	@ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || apt-get update -q
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
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

# Builds what is missing (cached by version under ~/.cache/sandbench), brings the cluster up,
# runs the `cluster` tests and tears it down, also when they fail.
test-cluster: deps cluster-deps venv
	bash tests/cluster/run-tests.sh

clean-runs:
	find reports -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
