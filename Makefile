# Rhythm developer tasks.
#
#   make install       uv workspace into .venv (with the `rhythm` command)
#   make run           the whole platform locally with a demo organisation (FRESH=1: start over)
#   make bench         every benchmark beside its baseline (QUICK=1: small sizes, < 5 min)
#   make infra-up      local Kafka (KRaft) + PostgreSQL on 127.0.0.1, data under .run/
#   make infra-down    stop them (data is kept)
#   make infra-status  what is running where
#   make lint          ruff + mypy
#   make test          install, infra-up, lint, then pytest against the local infrastructure
#   make chaos         fault tests on real processes, 50,000 events (QUICK=1: ~5,000); non-zero on loss
#   make clean         stop the infrastructure, delete its data and the tool caches

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON_VERSION ?= 3.11
UV_VERSION ?= 0.13.8
VENV := .venv
RHYTHM := $(VENV)/bin/rhythm
# Two workers: the suite mostly waits on the broker and the databases, so two share two cores.
PYTEST_ARGS ?= -n 2 --dist worksteal

# Directories that hold Python code (mypy refuses a list with an empty directory).
PY_DIRS := $(strip $(foreach d,shared cli services bench tests,\
	$(if $(shell find $(d) -name '*.py' -not -path '*/.*' 2>/dev/null | head -n 1),$(d))))

.PHONY: install run bench infra-up infra-down infra-status lint test clean chaos

install:
	@command -v uv >/dev/null 2>&1 || PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install "uv==$(UV_VERSION)"
	@if [ -f uv.lock ]; then \
		uv sync --python $(PYTHON_VERSION) --frozen; \
	else \
		uv sync --python $(PYTHON_VERSION); \
	fi
	@test -x $(RHYTHM) || { echo "uv sync did not install $(RHYTHM)" >&2; exit 1; }

# The whole platform with a demo organisation; FRESH=1 starts over.
run: install
	$(RHYTHM) run $(if $(FRESH),--fresh,)

# Every benchmark against the real broker -> bench/results/latest.{json,md}; QUICK=1: small sizes.
bench: install
	$(MAKE) --no-print-directory infra-up
	set -a; . ./.run/infra.env; set +a; $(VENV)/bin/python -m bench.run_all $(if $(QUICK),--quick,)

infra-up:
	$(RHYTHM) infra up

infra-down:
	$(RHYTHM) infra down

infra-status:
	$(RHYTHM) infra status

# mypy runs once per service: each service's tests are a package of their own (their own
# conftest), which one combined run would see as clashing module names.
lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(filter-out services,$(PY_DIRS))
	for service in services/*/; do $(VENV)/bin/mypy "$$service"; done

# pytest's exit code 5 ("no tests collected") fails the target like any other failure.
test: install
	$(MAKE) --no-print-directory infra-up
	$(MAKE) --no-print-directory lint
	set -a; . ./.run/infra.env; set +a; \
	status=0; $(VENV)/bin/pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: that is a failure" >&2; fi; \
	exit $$status

# Kills, a broker restart (its own broker), a rebalance, duplicates, poison; prints a table per phase.
chaos: install
	$(VENV)/bin/python -m bench.chaos $(if $(QUICK),--quick,)

clean:
	if [ -x $(RHYTHM) ]; then $(RHYTHM) infra down; fi
	rm -rf .run/kafka/data .run/kafka/kafka.* .run/kafka/cluster.id .run/kafka/server.properties
	rm -rf .run/postgres .run/infra.env
	rm -rf .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +
