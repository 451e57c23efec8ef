#!/usr/bin/env bash
# Create the peers' virtual environment (BrainPy, Jaxley, Brian2, NEURON, numba), separate from
# hh_jax's own venv because the peers pin their own jax versions. Each peer is installed on its
# own so that one that does not install here does not stop the others.
# Usage: benchmarks/make_peers_venv.sh [VENV]   (default: .venv-peers)
set -u
VENV="${1:-.venv-peers}"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# Brian2 2.9 still uses ndarray.ptp, removed in NumPy 2.4
"$VENV/bin/python" -m pip install -q "numpy>=1.26,<2.4" "psutil>=5.9"
for pkg in "numba>=0.60" "brian2>=2.7" "neuron>=8.2" "brainpy>=2.6" "jaxley>=0.5"; do  # with numpy<2.4 kept
    if "$VENV/bin/python" -m pip install -q "$pkg" "numpy<2.4"; then
        echo "peers: installed $pkg"
    else
        echo "peers: $pkg did not install here (it will be reported as skipped)" >&2
    fi
done
"$VENV/bin/python" -m pip freeze > "$VENV/freeze.txt"
