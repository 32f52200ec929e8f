# Two entry points for a fresh machine:
#   make demo   set up .venv and run the demo (the shipped micro Lavida-O on the synthetic world, full report)
#   make test   set up .venv and run the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo

.PHONY: setup demo test clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	# torch and torchvision first, as a matched pair (a mismatched torchvision breaks
	# transformers, torchmetrics and clean-fid imports; see docs/install.md)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/lavida-bench demo --output $(DEMO_OUT)

# two test processes, one per core of the 2-core CI machine (tests run torch single-threaded)
test: setup
	$(BIN)/python -m pytest -n 2

clean:
	rm -rf $(VENV) runs
