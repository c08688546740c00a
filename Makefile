# Two commands do all the set-up on a fresh machine:
#   make run    - build the virtual environment and run the main job
#   make test   - build the virtual environment and run the test suite
# and one for iterating: make test-fast - the suite without Ray, servers or slow tests (~1.5 min on 2 cores)
# TORCH_VERSION pins torch so a CPU machine never pulls CUDA wheels; TORCH_PIP_ARGS can add
# e.g. --index-url https://download.pytorch.org/whl/cpu where the default index serves CUDA builds.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=
RUN_ARGS ?=
STAMP := $(VENV)/.corrvos-installed

.PHONY: run test test-fast venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "torch==$(TORCH_VERSION)" $(TORCH_PIP_ARGS)
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@

run: $(STAMP)
	$(VENV)/bin/corrvos run configs/demo.yaml $(RUN_ARGS)

# Two parts, both must pass: the tests without Ray or servers (long ones too) on two pytest-xdist workers
# (CORRVOS_TEST_FAST=1: one that starts Ray or a server anyway fails), then the Ray and server tests on two
# workers that each take whole files (--dist loadfile: a module's shared search or cluster runs once) and
# each start their own local Ray; every port is picked free. These tests mostly wait on process starts,
# so two at a time overlap the waits. Together they are every test: `-m` splits, never skips.
# OMP_NUM_THREADS=1: two workers on two cores, one torch thread each. With torch's default (a thread per
# core) two tests oversubscribe the cores and OpenMP's spin-waiting can stall them: one bf16 test took
# 116 s instead of 7 s in a run; the non-Ray part took 124 s with one thread against 179-309 s without.
TEST_ENV := OMP_NUM_THREADS=1
test: $(STAMP)
	$(TEST_ENV) CORRVOS_TEST_FAST=1 $(VENV)/bin/python -m pytest -q -n 2 -m "not ray and not server" $(PYTEST_ARGS)
	$(TEST_ENV) $(VENV)/bin/python -m pytest -q -n 2 --dist loadfile -m "ray or server" $(PYTEST_ARGS)

# CORRVOS_TEST_FAST=1: a test that starts Ray or a server anyway fails (tests/conftest.py)
test-fast: $(STAMP)
	CORRVOS_TEST_FAST=1 $(VENV)/bin/python -m pytest -q -m "not ray and not server and not slow" $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
