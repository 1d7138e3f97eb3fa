# Every target a README command needs. `make test` and `make demo` install what they need first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAGE ?= dev
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_DEFAULT_REGION ?= us-east-1
export PYTHONDONTWRITEBYTECODE :=
CDK := node_modules/.bin/cdk

.PHONY: install lint format test test-fast synth demo bench clean

# Idempotent: re-runs only when pyproject.toml, requirements.lock or package-lock.json change.
install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile --no-deps -e .
	$(BIN)/python -m compileall -q -j0 $(VENV)/lib >/dev/null
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy stacks lambdas pipelines localcloud cli bench app.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every test. Whole files per worker, except the end-to-end cases that start from a serving champion: one group
# on one worker, sharing one local cloud (tests/conftest.py). CI runs this on 2 cores.
test: lint
	$(BIN)/pytest -n 2 --dist loadgroup --durations=15

# The inner loop: lint, types, unit and infrastructure tests; nothing that starts a local cloud or Spark
# (marked slow by folder and fixture, tests/tiers.py). Budget: 5 minutes on 2 cores.
test-fast: lint
	$(BIN)/pytest -n 2 --dist load -m "not slow" tests/unit tests/infrastructure

# cdk synth (cdk-nag AwsSolutions runs inside the synth) + cfn-lint on every template
synth: install
	$(CDK) synth --quiet --no-notices -c stage=$(STAGE)
	$(BIN)/cfn-lint --non-zero-exit-code error cdk.out/*.template.json

# The whole lifecycle offline on the synthesized stack (local cloud on moto): progress, summary, HTML report.
demo: install
	$(BIN)/mlops demo --summary demo-summary.json --report demo-report.html

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
