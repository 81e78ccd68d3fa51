# The one entry point: `make dev` and `make test` each build .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The SAM CLI gets its own virtualenv: it pins boto3/pydantic versions the app must not inherit.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
SAM_CLI_VERSION := 1.170.0

.PHONY: dev test lint typecheck unit bench bench-dev bench-capacity bench-metrics bench-dashboard bench-bulk faults-sweep clean sam-validate browser

# Progress lines, so a first `make dev` is not two silent minutes.
$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip"
	$(BIN)/pip install --quiet --upgrade pip
	@echo "==> installing durable and its dependencies (about two minutes the first time)"
	$(BIN)/pip install --quiet -e '.[dev]'
	@echo "==> $(VENV) is ready"
	touch $(STAMP)

$(SAM_STAMP):
	@echo "==> installing the SAM CLI $(SAM_CLI_VERSION) into $(SAM_VENV) (for the template checks)"
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli==$(SAM_CLI_VERSION)'
	touch $(SAM_STAMP)

dev: $(STAMP)
	$(BIN)/durable dev

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy src/durable

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/contract

# The dashboard's browser tests drive Debian's Chromium (Playwright never downloads one).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; }; }

sam-validate: $(SAM_STAMP)
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint

.PHONY: sam-local sam-local-setup

# `sam local` for real: the API, worker and sweeper functions in containers (on a stand-in
# for the Lambda image, built once from Debian and PyPI) against a running
# `durable dev --host 172.17.0.1` (README, "sam local").
sam-local: $(STAMP) $(SAM_STAMP)
	scripts/sam-local.sh

# For `make test`: a Docker daemon (installed and started as root) and the stand-in image,
# before pytest, so that no test's timeout pays for them. It never fails the build: where it
# cannot be done, tests/sam/test_sam_local.py skips (not root, no daemon) or says why.
sam-local-setup:
	@if [ "$$(id -u)" = 0 ] || docker info >/dev/null 2>&1; then \
	  { scripts/docker-daemon.sh && scripts/lambda-standin-image.sh; } || \
	    echo "==> sam local setup failed: tests/sam/test_sam_local.py will say why"; \
	else echo "==> no Docker daemon and not root: the sam local tests will be skipped"; fi

test: lint typecheck browser sam-local-setup $(STAMP) $(SAM_STAMP)
	$(BIN)/pytest -q -n 2 --dist loadgroup --durations=30

bench: $(STAMP)
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/list_runs.py
	$(BIN)/python bench/timeline_poll.py
	$(BIN)/python bench/run_logs.py
	$(BIN)/python -m bench.tasks_listing
	$(BIN)/python bench/telemetry_overhead.py
	$(BIN)/python bench/step_input.py

# The capacity model on AWS (bench/capacity.py): a few hundred runs measured on moto in
# process, then the model and its simulation at 1,000 and 10,000 runs/s (about a minute).
bench-capacity: $(STAMP)
	$(BIN)/python -m bench.capacity

# `durable dev` under load: 600 three-step runs from 16 HTTP clients (a few minutes at most).
bench-dev: $(STAMP)
	$(BIN)/python bench/dev_throughput.py --runs 600 --clients 16 --keys
	$(BIN)/python bench/dev_throughput.py --runs 600 --clients 16 --no-keys

# GET /metrics and Client.stats() with 100,000 runs' counters on moto (a few minutes).
bench-metrics: $(STAMP)
	$(BIN)/python bench/metrics_scale.py --runs 100000 --sample 100

# `durable dev` with 10,000 runs: GET /runs pages and filters over HTTP, and the dashboard
# ("/" and a 200-step run's page) loaded in Debian's Chromium (a few minutes).
bench-dashboard: $(STAMP) browser
	$(BIN)/python bench/dashboard_load.py --runs 10000 --steps 200

# `durable dev` with 10,000 waiting runs: one POST /bulk cancels them all; how long it takes.
bench-bulk: $(STAMP)
	$(BIN)/python bench/bulk_cancel.py --runs 10000

# The larger fault sweep (every crash point on memory and moto, throttling at 1/10/30 %,
# delivery storms over ten seeds): minutes, so not part of `make test`.
# Every crash point on both sides of every AWS call on moto too (make test takes one side of
# each there), then the larger sweep of bench/fault_sweep.py.
faults-sweep: $(STAMP)
	DURABLE_FULL_SWEEP=1 $(BIN)/pytest -q tests/faults
	$(BIN)/python bench/fault_sweep.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
