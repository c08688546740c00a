# Two commands do all the set-up on a fresh machine:
#   make run    - build the virtual environment and run the main job
#   make test   - build the virtual environment and run the test suite
# TORCH_VERSION pins torch so a CPU machine never pulls CUDA wheels; TORCH_PIP_ARGS can add
# e.g. --index-url https://download.pytorch.org/whl/cpu where the default index serves CUDA builds.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=
RUN_ARGS ?=
STAMP := $(VENV)/.corrvos-installed

.PHONY: run test venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "torch==$(TORCH_VERSION)" $(TORCH_PIP_ARGS)
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@

run: $(STAMP)
	$(VENV)/bin/corrvos run configs/demo.yaml $(RUN_ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
