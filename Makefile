# Entry points. Each target installs what it needs first (scripts/bootstrap.sh is idempotent and fast).
#   make sandbox        start the local sandbox hosts and deploy to them
#   make test           everything CI runs: lint, unit tests, every Molecule scenario
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help bootstrap image lint unit molecule test sandbox sandbox-down bench bench-converge

help:
	@echo "make sandbox       bootstrap, start pq-sandbox-app/pq-sandbox-sink, run prepare.yml and site.yml"
	@echo "make sandbox-down  remove the sandbox hosts and their network"
	@echo "make test          bootstrap, lint, unit tests, all Molecule scenarios (what .ci/run runs)"
	@echo "make lint          yamllint, ansible-lint, shellcheck, ruff"
	@echo "make unit          pytest tests/"
	@echo "make molecule      molecule test for every scenario (SCENARIO=name for one)"
	@echo "make image         build the test-host image if missing"
	@echo "make bench         the benchmark suite, no hosts (BENCH_SIZES, BENCH_RUNS, BENCH_DIR: README Benchmarks)"
	@echo "make bench-converge  site.yml on three fresh hosts, the idempotent rerun against ansible -m ping (not beside make test)"
	@echo "make bootstrap     install tools (Debian packages, .venv, collections)"

bootstrap:
	@bash scripts/bootstrap.sh

image: bootstrap
	@bash scripts/build-testhost-image.sh

lint: bootstrap
	@bash scripts/test.sh lint

unit: bootstrap
	@bash scripts/test.sh unit

molecule: image
	@bash scripts/test.sh molecule $(SCENARIO)

test:
	@bash scripts/test.sh all

sandbox: image
	@bash scripts/sandbox.sh up

sandbox-down: bootstrap
	@bash scripts/sandbox.sh down

bench: bootstrap
	@. scripts/env.sh && python3 -m bench

bench-converge: image
	@. scripts/env.sh && python3 -m bench.converge
