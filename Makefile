# hh_jax: two commands on a fresh machine.
#   make run   - create/refresh .venv, run the default simulation, write out/voltage.png + summary
#   make test  - create/refresh .venv with the test extras, run the test suite
#   make test-fast - the same without the tests marked slow (for development; make test runs all)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test test-fast bench peers clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# The `kernel_path()` line compiles the fused CPU kernel of ExpEuler once per machine (into
# ~/.cache/hh_jax; it falls back to the lax.scan loop where no C++ compiler is found).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e .
	$(PY) -c "from hh_jax._fused import kernel_path; print('fused kernel:', kernel_path())"
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e ".[test,notebooks,bench,data]"
	$(PY) -c "from hh_jax._fused import kernel_path; print('fused kernel:', kernel_path())"
	touch $(STAMP) $(TEST_STAMP)

run: $(STAMP)
	$(VENV)/bin/hh-jax simulate --preset brainpy --current 10 --duration 200 --dt 0.01 --n 1 --out out

test: $(TEST_STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q

# The slow tier is listed in tests/conftest.py (SLOW); make test still runs it.
test-fast: $(TEST_STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q -m "not slow"

bench: $(TEST_STAMP)
	$(PY) -m benchmarks.run

# The peer simulators (BrainPy, Jaxley, Brian2, NEURON, numba) in their own venv: they pin other jax versions.
peers:
	bash benchmarks/make_peers_venv.sh .venv-peers

clean:
	rm -rf $(VENV) out .pytest_cache
