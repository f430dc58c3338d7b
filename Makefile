# vecspread developer targets. `make test` is what .ci/run calls; `make demo` is the main job.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
TORCH   = torch==2.13.0

.PHONY: setup test demo man completions docs clean

setup: $(VENV)/.installed

# The CPU build of torch goes in first (PyTorch's CPU index when reachable, see tools/install_torch.sh)
# and constraints.txt pins it, so nothing pulls the CUDA stack; the last line fails if something did.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	sh tools/install_torch.sh $(BIN)/python $(TORCH)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python tools/check_no_cuda.py
	touch $@

# test files are spread over the cores (pytest-xdist); each file's tests stay together, so that its
# module fixtures are built once
test: setup
	$(BIN)/python -m pytest -q -n auto --dist loadfile

demo: setup
	$(BIN)/vecspread demo

# Regenerate man pages (help2man) and shell completions from the CLI itself.
man: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python tools/gen_docs.py man

completions: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python tools/gen_docs.py completions

docs: man completions

clean:
	rm -rf $(VENV) build *.egg-info
