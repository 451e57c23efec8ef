#!/usr/bin/env bash
# The GPU check of issue 16, in one step, on a machine with one NVIDIA GPU:
#
#   pip install -e ".[cuda12,test]"
#   bash benchmarks/gpu_check.sh
#
# 1. the GPU tests of the Pallas kernel (tests/test_pallas.py: the Triton kernel against the
#    lax.scan loop on the CPU kernel's case matrix, and the CUDA lowering tests);
# 2. the throughput benchmark (benchmarks/gpu_throughput.py): Pallas kernel vs scan loop vs a
#    plain JAX scan, N = 1e4 ... 1e7, float32 and float64, first call and peak memory.
# Writes benchmarks/results/gpu_tests.log, gpu_throughput.json and gpu_throughput.md, in under
# 5 minutes. Exits non-zero when a test or a configuration fails, and with status 2 (one line
# on stderr) where JAX sees no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
RESULTS=benchmarks/results
mkdir -p "$RESULTS"

"$PY" -c '
import sys, jax
if jax.default_backend() != "gpu":
    sys.exit(f"gpu_check: no GPU: JAX backend is {jax.default_backend()!r}; run this on a CUDA machine after pip install -e \".[cuda12,test]\".")
print("gpu_check:", jax.devices()[0].device_kind, "jax", jax.__version__)
' || exit 2

status=0
echo "== GPU tests (tests/test_pallas.py -k 'gpu or cuda') =="
timeout 100 "$PY" -m pytest -q tests/test_pallas.py -k "gpu or cuda" 2>&1 | tee "$RESULTS/gpu_tests.log" || status=1

echo "== throughput (benchmarks/gpu_throughput.py) =="
timeout 210 "$PY" -m benchmarks.gpu_throughput "$@" || status=1

[ -f "$RESULTS/gpu_throughput.md" ] && cat "$RESULTS/gpu_throughput.md"
if [ "$status" -ne 0 ]; then echo "gpu_check: FAILED (see above)" >&2; fi
exit "$status"
