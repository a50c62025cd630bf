# hacnn-tf: `make demo` trains and evaluates HA-CNN on the built-in synthetic data set; `make test` runs the tests.
# Both create the virtual environment in .venv on first use (Python 3.11, nothing else pre-installed). The demo
# installs the package with its deployment extras; the tests add torch 2.13.0 (CPU) and torchreid, the references.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
TEST := $(VENV)/.installed-test
BENCH := $(VENV)/.installed-bench

.PHONY: demo test test-fast lint bench clean

$(BASE): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[litert,serving]'
	# tensorflow-serving-api requires the full `tensorflow` wheel; beside tensorflow-cpu it goes in without deps.
	$(BIN)/python -m pip install --quiet --no-deps tensorflow-serving-api==2.21.0
	touch $@

$(TEST): $(BASE)
	$(BIN)/python -m pip install --quiet -e '.[test,litert,serving,onnx,openvino]'
	touch $@

$(BENCH): $(BASE)
	$(BIN)/python -m pip install --quiet -e '.[bench,litert,serving,onnx,openvino]'
	touch $@

demo: $(BASE)
	$(BIN)/python -m training.demo --workdir runs/demo

test: $(TEST) lint
	$(BIN)/python -m pytest -q -rs

# Every test not marked slow (real training, export chains, fresh-venv installs, the docs' examples): a check
# before a commit.
test-fast: $(TEST) lint
	$(BIN)/python -m pytest -q -rs -m "not slow"

# ruff's rules and line length are in pyproject.toml ([tool.ruff]).
lint: $(TEST)
	$(BIN)/ruff check hacnn_tf benchmarks training export tests
	$(BIN)/ruff format --check hacnn_tf benchmarks training export tests

# Speed and memory against torchreid (CPU) in one process, then every exported format against torchreid through ONNX
# (a second process: its runtimes' thread pools would slow torchreid's eager model); prints the tables and goals,
# then the tracker path and the float32 SavedModel's batch-1 latency under each TF Serving setting; writes
# benchmarks/results/.
bench: $(BENCH)
	$(BIN)/python -m benchmarks.run --out benchmarks/results
	$(BIN)/python -m benchmarks.formats --out benchmarks/results
	$(BIN)/python -m benchmarks.tracking --out benchmarks/results
	$(BIN)/python -m benchmarks.serving_latency --out benchmarks/results

clean:
	rm -rf $(VENV) runs
