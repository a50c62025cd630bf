# hacnn-tf: `make demo` trains and evaluates HA-CNN on the built-in synthetic data set; `make test` runs the tests.
# Both create the virtual environment in .venv on first use (Python 3.11, nothing else pre-installed).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test clean

$(INSTALLED): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,litert,serving]'
	# tensorflow-serving-api requires the full `tensorflow` wheel; beside tensorflow-cpu it goes in without deps.
	$(BIN)/python -m pip install --quiet --no-deps tensorflow-serving-api==2.21.0
	touch $@

demo: $(INSTALLED)
	$(BIN)/python -m training.demo --workdir runs/demo

test: $(INSTALLED)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
