# Developer entry points. `make test` is the command the README documents.
.PHONY: setup test demo bench lint gpu-carry

# The environment: DIFFIR_VENV when set (as for scripts/setup_env.sh), else .venv in the checkout.
PYTHON := $(or $(DIFFIR_VENV),.venv)/bin/python

setup:
	bash scripts/setup_env.sh

test: setup
	$(PYTHON) -m pytest -q tests

# `make demo DEMO_ARGS='--task sr'` for the x4 super-resolution demo, '--quick' for the short run.
DEMO_ARGS ?=
demo: setup
	$(PYTHON) tools/demo.py $(DEMO_ARGS)

bench: setup
	@set -e; for f in bench/*.py; do \
	  [ -e "$$f" ] || { echo "no bench/*.py scripts"; break; }; \
	  echo ">>> $$f"; $(PYTHON) "$$f"; \
	done

# Fails on any finding (rules: ruff.toml). `ruff check --fix` repairs the fixable ones.
lint: setup
	$(PYTHON) -m ruff check diffir_mm tools tests bench scripts configs setup.py

# Copy the official networks into the git-ignored .gpu_carry/ that the GPU machine's run carries
# (bench/README.md, gpu_suite.py).
gpu-carry: setup
	$(PYTHON) bench/gpu_suite.py --prepare
