# sandbench: `make demo` runs the quick suite on this host and writes the report;
# `make test` runs the test suite. Both install what is missing first (Debian, as root).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the harness uses. python3-venv: Debian's python3 needs it for `-m venv`.
# qemu-system-x86, qemu-utils: the qemu runtime; kmod (depmod): the guest's initramfs. The guest
# kernel is fetched with apt-get download, not installed.
APT_PACKAGES := runc crun fio iperf3 busybox-static mmdebstrap gcc libc6-dev hyperfine \
                python3-venv e2fsprogs iproute2 skopeo qemu-system-x86 qemu-utils kmod

# Only the tests need these, so `make demo` does not install them. chromium: the report's browser
# test. openssh-server: the real sshd the SSH node-facts tests talk to. prometheus (promtool and
# the server) and prometheus-pushgateway: the OpenMetrics export and push are checked by them.
TEST_PACKAGES := chromium openssh-server prometheus prometheus-pushgateway

# The test cluster (make test-cluster): containerd, CNI plugins, iptables (its egress guard),
# openssl (its CA), curl (health checks). Go itself comes with the machine (Debian's is too old).
CLUSTER_PACKAGES := containerd containernetworking-plugins iptables openssl curl

# docker-registry (Distribution 2.8.2): the registry the cold/warm image-pull test pulls from.
# up.sh runs its own on 127.0.0.1 with its own config and storage; the package's system service
# would listen on :5000 on every address, so it is installed like TEST_PACKAGES (NO_SERVICES).
CLUSTER_SERVICE_PACKAGES := docker-registry

# gVisor's runsc, built from the Go module proxy by tests/cluster/build-gvisor.sh (about 5 min
# cold on 2 cores, then cached by version). Optional: without Go, or when the build fails, the
# demo goes on without it.
GO ?= $(shell command -v go 2>/dev/null || { test -x /usr/local/go/bin/go && echo /usr/local/go/bin/go; })
SANDBENCH_CACHE ?= $(HOME)/.cache/sandbench

.PHONY: demo test test-cluster lint deps test-deps cluster-deps apt-install venv image doctor \
        gvisor kubevirt cluster-build cluster-build-base bench clean-runs help

help:
	@echo "make demo   install what is missing, build the image, run the quick suite, write the report"
	@echo "make test   install what is missing and run the test suite"
	@echo "make test-cluster   build Kubernetes v1.34.4, gVisor and KubeVirt v1.7.0 (cached), bring up the test"
	@echo "                    cluster, run the Kubernetes tests against it, tear it down; then again with a"
	@echo "                    second node and 100 KWOK fake nodes for the multinode and kwok tests; last"
	@echo "                    with real KubeVirt deployed in emulation for the KubeVirt tests"
	@echo "make gvisor build gVisor's runsc and its containerd shim (cached; skipped without Go)"
	@echo "make cluster-build   build the test cluster's Kubernetes, etcd, crictl, kwok and KubeVirt (cached)"
	@echo "make bench  the benchmarks, timed (make test runs each of them once, untimed)"
	@echo "make kubevirt   build KubeVirt v1.7.0's binaries and component images (cached; never fails)"

deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

# NO_SERVICES: the tests start their own sshd, Prometheus, Pushgateway (and, for the cluster,
# registry) on 127.0.0.1 and stop them; Debian's packages would otherwise start system services
# listening on every address (sshd on 22, Prometheus on 9090, the Pushgateway on 9091, the
# registry on 5000) and enable them at boot.
test-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TEST_PACKAGES)" NO_SERVICES=1

cluster-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(CLUSTER_PACKAGES)"
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(CLUSTER_SERVICE_PACKAGES)" NO_SERVICES=1

# One at a time (flock): .ci/run installs in the background (the cluster's builds) while `make
# test` installs in the foreground, and apt-get fails at once on a lock another apt-get holds.
# 9>&-: a service a package starts must not inherit the lock and hold it after apt-get ends.
apt-install:
	@# apt-get download (the guest kernel) needs package lists even when nothing is missing.
	@exec 9>/run/lock/sandbench-apt.lock; flock 9; \
	ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || apt-get update -q 9>&- || exit $$?; \
	missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    guard=; flags=; \
	    if [ -n "$(NO_SERVICES)" ]; then \
	        flags=--no-install-recommends; \
	        if [ ! -e /usr/sbin/policy-rc.d ]; then \
	            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; guard=1; \
	        fi; \
	    fi; \
	    rc=0; apt-get update -q 9>&- && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$flags $$missing 9>&- || rc=$$?; \
	    if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	    if [ -n "$(NO_SERVICES)" ] && command -v systemctl >/dev/null; then \
	        for p in $$missing; do dpkg -L $$p 2>/dev/null; done \
	            | grep -E '^/(usr/)?lib/systemd/system/[^/]+\.(service|socket|timer)$$' \
	            | xargs -r -n1 basename | xargs -r systemctl disable --now >/dev/null 2>&1 9>&- || true; \
	    fi; \
	    exit $$rc; \
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

# Never fails: a missing Go or a failed build is one line, and the demo runs without runsc.
gvisor:
	@if [ -z "$(GO)" ]; then \
	    echo "gvisor: skipped, no Go toolchain to build runsc with"; \
	else \
	    mkdir -p "$(SANDBENCH_CACHE)/gvisor"; \
	    log="$(SANDBENCH_CACHE)/gvisor/build.log"; \
	    echo "gvisor: building runsc unless cached (about 5 min the first time; log: $$log)"; \
	    if bin=$$(GO="$(GO)" SANDBENCH_CACHE="$(SANDBENCH_CACHE)" bash tests/cluster/build-gvisor.sh 2>"$$log"); then \
	        echo "gvisor: runsc in $$bin"; \
	    else \
	        echo "gvisor: skipped, building runsc failed (see $$log)"; \
	    fi; \
	fi

# KubeVirt v1.7.0's binaries (build-kubevirt.sh) and component images as OCI archives
# (kubevirt_images.py), cached by version under $(SANDBENCH_CACHE)/kubevirt, for the KubeVirt
# phase of `make test-cluster` (kubevirt-up.sh deploys them). Never fails itself: a missing tool
# or a failed build is one line, with the log to read, and kubevirt-up.sh then says what is
# missing. About 9 min cold on 2 cores beside `make test` (binaries 467 s, images 67 s), which
# .ci/run runs it beside, in the background, after cluster-build-base.
KUBEVIRT_DEB_PACKAGES := mmdebstrap libcap2-bin gcc libc6-dev

kubevirt:
	@log="$(SANDBENCH_CACHE)/kubevirt/build.log"; mkdir -p "$(SANDBENCH_CACHE)/kubevirt"; \
	if [ -z "$(GO)" ]; then \
	    echo "kubevirt: skipped, no Go toolchain"; \
	elif ! $(MAKE) --no-print-directory apt-install PACKAGES="$(KUBEVIRT_DEB_PACKAGES)" >"$$log" 2>&1; then \
	    echo "kubevirt: skipped, installing $(KUBEVIRT_DEB_PACKAGES) failed (see $$log)"; \
	else \
	    echo "kubevirt: building binaries and images unless cached (about 9 min the first time on 2 cores; log: $$log)"; \
	    if ! bin=$$(nice -n 19 env GO="$(GO)" PATH="$$(dirname "$(GO)"):$$PATH" SANDBENCH_CACHE="$(SANDBENCH_CACHE)" \
	            bash tests/cluster/build-kubevirt.sh 2>>"$$log"); then \
	        echo "kubevirt: skipped, building the binaries failed (see $$log)"; \
	    elif ! img=$$(nice -n 19 env PATH="$$(dirname "$(GO)"):$$PATH" SANDBENCH_CACHE="$(SANDBENCH_CACHE)" \
	            $(PYTHON) tests/cluster/kubevirt_images.py 2>>"$$log"); then \
	        echo "kubevirt: binaries in $$bin; building the images failed (see $$log)"; \
	    else \
	        echo "kubevirt: binaries in $$bin, images in $$img"; \
	    fi; \
	fi

# The quick profile's default runtimes: native, runc, crun and runsc (left out, with a note
# saying how to get it, when it could not be built).
demo: deps venv gvisor
	$(BIN)/sandbench doctor --fix --runtimes native,runc,crun >/dev/null || true
	$(BIN)/sandbench image build
	$(BIN)/sandbench run --profile quick

lint: venv
	$(BIN)/python -m mypy
	$(BIN)/lint-imports

# gvisor: the runsc integration tests really run it (Go comes with the machine).
# --benchmark-disable: each benchmark runs once, as a smoke test; `make bench` times them.
test: deps test-deps venv gvisor
	$(BIN)/sandbench doctor --fix --runtimes native,runc,crun >/dev/null || true
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest --benchmark-disable

# The figures the closing notes quote: report rendering and the example sandbox benchmark,
# several rounds each, on pytest-benchmark's clock (compare runs with --benchmark-compare).
bench: deps venv
	$(BIN)/python -m pytest tests/benchmarks --benchmark-only

# The test cluster's binaries alone: Kubernetes v1.34.4, etcd v3.6.4, crictl v1.34.0 and kwok
# v0.8.0 from the Go module proxy (cluster-build-base), then KubeVirt v1.7.0, cached by version
# (`make test-cluster` builds them too when they are missing).
cluster-build: cluster-build-base
	@$(MAKE) --no-print-directory kubevirt

cluster-build-base:
	bash tests/cluster/build-k8s.sh
	bash tests/cluster/build-etcd.sh
	bash tests/cluster/build-crictl.sh >/dev/null
	bash tests/cluster/build-kwok.sh >/dev/null

# Builds what is missing (cached by version under ~/.cache/sandbench), brings the cluster up,
# runs the `cluster` tests and tears it down, also when they fail. Then the same again with a
# second node and 100 KWOK fake nodes (the tests marked multinode or kwok), and last with real
# KubeVirt v1.7.0 deployed in emulation (the tests marked kubevirt), which needs its own
# bring-up: the node namespace and the kubelet root KubeVirt expects. KubeVirt comes last so
# that on a cold machine its build, the slowest (.ci/run starts it in the background), goes on
# while the other two phases run; `make kubevirt` waits for that build's lock, then finds it
# cached. Every phase runs even when an earlier one fails; the target fails if any did.
test-cluster: deps test-deps cluster-deps venv
	rc=0; bash tests/cluster/run-tests.sh || rc=$$?; \
	SANDBENCH_NODES=2 bash tests/cluster/run-tests.sh || rc=$$?; \
	$(MAKE) --no-print-directory kubevirt; \
	SANDBENCH_KUBEVIRT=1 bash tests/cluster/run-tests.sh || rc=$$?; exit $$rc

clean-runs:
	find reports -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
