# tradehub: the tamyla.tradehub collection and its tooling.
# `make help` lists the targets. Every target installs what it needs first.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
COLLECTION := collections/ansible_collections/tamyla/tradehub
PIP_VERSION := 25.3

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= false
export PY_COLORS ?= 0

# Molecule scenarios run by `make molecule`: every folder under molecule/ with a
# molecule.yml, or the ones named on the command line (make molecule SCENARIOS=x).
SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) \
	  | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV_STAMP): requirements/dev.txt requirements/constraints.txt hubs/reference/pyproject.toml tools/license/pyproject.toml
	@echo "install: building $(VENV) from requirements/dev.txt (pinned by requirements/constraints.txt)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(VENV)/bin/pip install --quiet -r requirements/dev.txt -c requirements/constraints.txt
	$(VENV)/bin/pip install --quiet --no-deps --editable hubs/reference
	$(VENV)/bin/pip install --quiet --no-deps --editable tools/license
	@touch $@

.PHONY: install
install: $(VENV_STAMP) ## Build the toolchain virtualenv .venv (pinned)

.PHONY: setup
setup: ## Install the system packages and the Molecule host image (as root)
	scripts/setup-host.sh

.PHONY: lint
lint: install ## ansible-lint (production), yamllint, ruff, changelog fragments
	yamllint --strict .
	ansible-lint
	ruff check .
	ruff format --check .
	cd $(COLLECTION) && antsibull-changelog lint

.PHONY: format
format: install ## Rewrite the Python files in the house format
	ruff check --fix .
	ruff format .

.PHONY: sanity
sanity: install ## ansible-test sanity on the collection
	scripts/sanity.sh

.PHONY: unit
unit: install ## Unit tests, and the reference hub against real PostgreSQL and Redis
	scripts/setup-host.sh --packages-only
	pytest tests

.PHONY: molecule
molecule: install ## Molecule scenarios on real systemd hosts (podman)
	scripts/setup-host.sh
	@for scenario in $(SCENARIOS); do \
	  echo "molecule: scenario $$scenario"; \
	  molecule test --scenario-name "$$scenario" || exit 1; \
	done

.PHONY: build
build: install ## Build the collection tarball into build/
	mkdir -p build
	ansible-galaxy collection build --force --output-path build $(COLLECTION)

WHEELHOUSE := build/wheelhouse
# What the hub role installs from: every wheel in one archive, the way the vendor ships
# a hub release to customers without internet access.
WHEELHOUSE_ARCHIVE := build/tradehub-reference-hub-1.0.0-wheelhouse.tar.gz
HUB_SOURCES := hubs/reference/pyproject.toml $(shell find hubs/reference/src -type f -not -path '*/__pycache__/*')
# The hosts' Python and platforms: Debian 12 (CPython 3.11, glibc 2.36, x86_64).
HOST_PYTHON_VERSION ?= 3.11
HOST_PLATFORMS ?= manylinux_2_36 manylinux_2_34 manylinux_2_28 manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1
HOST_ARCH ?= x86_64

$(WHEELHOUSE)/.built: $(VENV_STAMP) $(HUB_SOURCES) requirements/constraints.txt requirements/wheelhouse-extra.txt
	@echo "wheelhouse: building the reference hub and its dependencies for the hosts into $(WHEELHOUSE)"
	rm -rf $(WHEELHOUSE)
	$(VENV)/bin/pip wheel --quiet --no-deps --wheel-dir $(WHEELHOUSE) ./hubs/reference
	$(VENV)/bin/pip download --quiet --dest $(WHEELHOUSE) --only-binary=:all: \
	  --python-version $(HOST_PYTHON_VERSION) --implementation cp \
	  $(foreach p,$(HOST_PLATFORMS),--platform $(p)_$(HOST_ARCH)) \
	  --constraint requirements/constraints.txt \
	  $(WHEELHOUSE)/tradehub_reference_hub-*.whl -r requirements/wheelhouse-extra.txt
	tar -C $(WHEELHOUSE) --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
	  -czf $(WHEELHOUSE_ARCHIVE) $$(cd $(WHEELHOUSE) && ls *.whl)
	@touch $@

.PHONY: wheelhouse
wheelhouse: $(WHEELHOUSE)/.built ## Build the reference hub's wheelhouse archive (offline install)

.PHONY: demo
demo: install wheelhouse ## Bring up the all-in-one sandbox: seven hubs behind TLS
	scripts/setup-host.sh
	scripts/demo.sh up

.PHONY: demo-destroy
demo-destroy: ## Remove the sandbox
	scripts/demo.sh down

.PHONY: test
test: lint sanity build unit molecule ## Everything: lint, sanity, build, unit, molecule

.PHONY: clean
clean: ## Remove build output and caches (keeps .venv)
	rm -rf build .pytest_cache .ruff_cache $(COLLECTION)/tests/output
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +
