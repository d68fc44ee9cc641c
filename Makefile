# cloudvirt.platform — the two commands a user needs: `make lab` and `make test`.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections
export ANSIBLE_ROLES_PATH := $(CURDIR)/roles
export ANSIBLE_FORCE_COLOR := $(if $(CI),0,1)
export PY_COLORS := $(if $(CI),0,1)

.PHONY: help venv lab lab-destroy lab-status test lint sanity unit integration molecule bench e2e build clean

help:
	@echo "make lab          local multi-node cluster (containers with systemd) running the platform"
	@echo "make lab-destroy  remove everything 'make lab' made"
	@echo "make test         everything CI runs: lint, sanity, unit, integration, Molecule"
	@echo "make bench        benchmark scripts (figures printed side by side)"
	@echo "make e2e          browser test of the app on the lab's floating IP (after make lab)"
	@echo "make build        build the collection tarball"

# The project venv; rebuilt when the pinned requirements change.
venv: $(VENV)/.stamp .build/collections/ansible_collections/cloudvirt/platform

$(VENV)/.stamp: requirements.txt requirements-dev.txt
	@scripts/venv.sh
	@touch $@

.build/collections/ansible_collections/cloudvirt/platform:
	@mkdir -p $(@D)
	@ln -sfn ../../../.. $@

lab: venv
	@scripts/lab.sh up

lab-destroy:
	@scripts/lab.sh destroy

lab-status:
	@scripts/lab.sh status

test: venv
	@scripts/test.sh $(STAGES)

lint: venv
	@scripts/test.sh lint

sanity: venv
	@scripts/test.sh sanity

unit: venv
	@scripts/test.sh unit

integration: venv
	@scripts/test.sh integration

molecule: venv
	@scripts/test.sh molecule

bench: venv
	@scripts/bench.sh

# The browser test against the running lab (make lab first).
e2e: venv
	@bash -c '. scripts/lib.sh && ensure_host_packages chromium' && python -m pytest -p no:cacheprovider -v tests/e2e

build: venv
	@mkdir -p .build/dist && ansible-galaxy collection build --force --output-path .build/dist .

clean: lab-destroy
	rm -rf .build tests/output
