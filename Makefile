# imgclf — the two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv and install imgclf into it on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.imgclf-installed

.PHONY: install demo smoke test test-fast lint fashion-data bench clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench,lint,mlflow]'
	touch $(STAMP)

install: $(STAMP)

## The main job: digits (bundled with scikit-learn) -> clean -> prepare -> split -> train -> evaluate -> predict
demo: $(STAMP)
	$(BIN)/imgclf run configs/digits.yaml

## A tiny end-to-end run (digits, 20 images per class, 1 epoch) into a temporary folder: the CI smoke test
smoke: $(STAMP)
	rm -rf .smoke && $(BIN)/imgclf run configs/digits.yaml --data-dir .smoke/data --models-dir .smoke/models \
		--set source.dataset.limit_per_class=20 --set prepare.size=16 --epochs 1 && rm -rf .smoke

## The whole test suite (slow end-to-end tests included), 2 workers
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

## Everything but the tests marked slow
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

## The checks that keep the code's shape: ruff (lint + format), mypy, import-linter's layer contracts,
## no function over 80 lines in src/
lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/lint/function_length.py src

## Debian's Fashion-MNIST idx files (/usr/share/datasets/fashion-mnist); needs root + apt
fashion-data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "fashion-mnist already installed"; \
	elif command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	else echo "apt-get not available: imgclf will fall back to Keras' dataset cache/download"; fi

clean-venv:
	rm -rf $(VENV)
