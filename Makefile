# Linju — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The Matrix tests run against a real Synapse homeserver, installed from PyPI into a venv of its
# own (its pins must not mix with ours); tests/matrix/homeserver.py uses it.
SYNAPSE_VENV  := .venv-synapse
SYNAPSE_STAMP := $(SYNAPSE_VENV)/.installed
SYNAPSE_SPEC  := matrix-synapse>=1.100,<2
# Test processes (pytest-xdist); every worker has its own databases, see tests/conftest.py.
TEST_WORKERS ?= 3

.PHONY: run test bench install migrate train clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(SYNAPSE_STAMP):
	$(PYTHON) -m venv $(SYNAPSE_VENV)
	$(SYNAPSE_VENV)/bin/pip install --quiet --upgrade pip
	$(SYNAPSE_VENV)/bin/pip install --quiet '$(SYNAPSE_SPEC)'
	touch $(SYNAPSE_STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/linju run

test: $(STAMP) $(SYNAPSE_STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not serial" $(ARGS)
	$(BIN)/python -m pytest -q -m serial $(ARGS) || [ $$? -eq 5 ]   # 5: ARGS selected none of them

bench: $(STAMP)
	$(BIN)/python -m bench $(B)

migrate: $(STAMP)
	$(BIN)/linju migrate

train: $(STAMP)
	$(BIN)/linju intake train

clean:
	rm -rf $(VENV) $(SYNAPSE_VENV) var/*.db
