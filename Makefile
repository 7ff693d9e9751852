# Developer shortcuts. `make` or `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
COMPOSE ?= docker compose
BIN := target/release/dispatchctl

.PHONY: help docker-up docker-grafana docker-down container-test build test lint services completions bench

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

docker-up: ## Build and start the full stack (docker-compose.yml) in the background
	$(COMPOSE) up -d --build

docker-grafana: ## Start the stack with Grafana too (http://127.0.0.1:3000, dashboard "dispatchctl")
	$(COMPOSE) --profile grafana up -d --build

docker-down: ## Stop the stack (volumes are kept; add ARGS=-v to drop them)
	$(COMPOSE) down $(ARGS)

container-test: ## Build the image and prove it: roles, health, 500 deliveries, SIGTERM, replay, compose
	bash scripts/container-test.sh $(ARGS)

build: ## Build the release binary
	$(CARGO) build --release --locked

test: ## Run the test suite (starts local services unless DISPATCHCTL_SKIP_SERVICES=1)
	bash scripts/test.sh

lint: ## Check formatting and run clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

services: ## Start PostgreSQL, RabbitMQ and Redis locally, without Docker
	bash scripts/start-services.sh

completions: ## Regenerate docs/CONFIGURATION.md, completions/ and man/ from the code (a test checks they are fresh)
	$(CARGO) xtask gen

bench: ## Run the benchmark script
	bash scripts/bench.sh
