"""GPU throughput: the Pallas kernel vs the `lax.scan` loop vs a plain 40-line JAX scan.

``python -m benchmarks.gpu_throughput [--sizes 1e4,1e5,1e6,1e7] [--repeats 3] [--budget 200]``
(run by ``benchmarks/gpu_check.sh``; on a machine without a GPU it refuses with one line and
exit status 2).

Workload: N neurons, each with its own constant current (5 → 15 µA/cm² across the population,
so most fire), from rest (V = −65 mV, gates at steady state), 100 ms at dt = 0.01 ms
(10 000 steps; N = 10⁷ runs 2 000 steps, 20 ms, to fit the time budget), nothing recorded.

- ``pallas``: `_pallas.pallas_arrays` (exponential Euler, staggered) with the crossing record
  of `max_spikes` = 8 slots per neuron, Hermite brackets: the same output as ``scan``.
- ``scan``: the `lax.scan` loop `simulate` runs on a GPU today (`hh_jax.ScanLoop().arrays`,
  `ExpEuler`), same record.
- ``plain``: `benchmarks/_baseline.py`, a plain 40-line `lax.scan` exponential Euler (BrainPy's
  simultaneous form), spike counts only: what a user writes without hh_jax.

Each (method, dtype) runs in a fresh process over the sizes in increasing order, so that the
device's peak memory (``device.memory_stats()["peak_bytes_in_use"]``) read after a size is that
size's peak. Per configuration: the first call (trace + compile + run), the median of
`repeats` further calls (each ended by ``block_until_ready``), neuron-steps/s and µs per step.
The spike times' refinement (`_spikes.refine`, after the loop, shared) is not timed.
Writes ``results/gpu_throughput.json`` and ``results/gpu_throughput.md``.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
METHODS = ("pallas", "scan", "plain")
DTYPES = ("float32", "float64")
STEPS = int(os.environ.get("HH_JAX_GPU_BENCH_STEPS", 10_000))
DT = 0.01
STEPS_AT_1E7 = 2_000
MAX_SPIKES = 8


def _steps(N: int) -> int:
    return STEPS if N < 10**7 else STEPS_AT_1E7


SMOKE = "HH_JAX_GPU_BENCH_ON_CPU"
"""Environment variable: set to 1 to run this on the CPU (tiny sizes, the kernel interpreted):
a smoke test of the script itself, not a measurement."""


def _gpu_or_exit():
    import jax

    if jax.default_backend() != "gpu" and os.environ.get(SMOKE) != "1":
        print(f"gpu_throughput: needs a GPU; JAX's backend here is {jax.default_backend()!r} "
              "(install with pip install -e \".[cuda12,test]\" on a CUDA machine).", file=sys.stderr)
        sys.exit(2)
    return jax


# --- The loops (the one place that knows hh_jax's private calling conventions) ---------------
def _make(method: str, N: int, n_steps: int, dtype_name: str, block: int | None = None):
    """A jitted ``run()`` of one configuration, and its arguments."""
    import jax
    import jax.numpy as jnp

    import hh_jax

    dtype = jnp.dtype(dtype_name)
    currents = jnp.linspace(5.0, 15.0, N, dtype=dtype)
    y0 = hh_jax.steady_state_at(jnp.full((N,), -65.0, dtype))
    if method == "plain":
        from benchmarks._baseline import make_baseline

        run = make_baseline(n_steps, DT)
        return run, (y0.V, y0.m, y0.h, y0.n, currents)

    from hh_jax import _pallas
    from hh_jax._prepare import Problem

    shape = (N,)
    config = Problem(
        n_steps=n_steps, dt=jnp.asarray(DT, dtype), t0=jnp.asarray(0.0, dtype), record=(),
        record_every=1, max_spikes=MAX_SPIKES, shape=shape, dtype=jnp.dtype(dtype), spike_interpolation=hh_jax.HermiteSpikes())
    stimulus = hh_jax.Constant(currents)
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), hh_jax.HHParams())
    y0 = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape).astype(dtype), y0)
    if method == "pallas":
        interpret = jax.default_backend() != "gpu"  # the CPU smoke test only
        reason = _pallas.pallas_unavailable_reason(stimulus, config, dtype, interpret=interpret)
        if reason is not None:
            raise RuntimeError(f"the Pallas kernel cannot run: {reason}")
        loop = lambda p, y: _pallas.pallas_arrays(p, stimulus, y, config=config, staggered=True, states="",
                                                  interpret=interpret, block=block)[:3]
    else:
        loop = lambda p, y: hh_jax.ScanLoop().arrays(p, stimulus, y, hh_jax.ExpEuler(), config)[:3]
    return jax.jit(loop), (params, y0)
# ---------------------------------------------------------------------------------------------


def _worker(method: str, dtype_name: str, sizes: list[int], repeats: int, budget: float, block: int | None):
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    jax = _gpu_or_exit()
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    jax.block_until_ready(jnp.ones(8) + 1)  # backend start-up, outside the first call
    device = jax.devices()[0]
    start = time.perf_counter()
    rows = []
    for N in sizes:
        n_steps = _steps(N)
        row = dict(method=method, dtype=dtype_name, N=N, steps=n_steps)
        if time.perf_counter() - start > budget:
            rows.append(dict(row, error=f"skipped: this worker's time budget ({budget:.0f} s) is spent"))
            continue
        try:
            run, args = _make(method, N, n_steps, dtype_name, block)
            jax.block_until_ready(args)
            t = time.perf_counter()
            out = jax.block_until_ready(run(*args))
            first = time.perf_counter() - t
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                out = jax.block_until_ready(run(*args))
                times.append(time.perf_counter() - t)
            counts = out if method == "plain" else out[1]
            median = statistics.median(times)
            stats = device.memory_stats() or {}
            row.update(first_call_s=first, median_s=median, times_s=times,
                       neuron_steps_per_s=N * n_steps / median, us_per_step=1e6 * median / n_steps,
                       peak_bytes=stats.get("peak_bytes_in_use"), spikes=int(jnp.sum(counts)))
            del out, args, run
        except Exception as e:  # reported in the table; the run exits non-zero
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps(rows))


def _versions():
    import jax
    import jaxlib

    d = jax.devices()[0]
    return dict(device=f"{d.device_kind} ({d.platform})", jax=jax.__version__, jaxlib=jaxlib.__version__,
                python=platform.python_version(), date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))


def _markdown(meta, rows) -> str:
    scan = {(r["dtype"], r["N"]): r for r in rows if r["method"] == "scan" and "median_s" in r}
    lines = [
        "# GPU throughput: Pallas kernel vs scan loop vs plain JAX scan",
        "",
        f"{meta['device']}; jax {meta['jax']}, jaxlib {meta['jaxlib']}, Python {meta['python']}; {meta['date']}.",
        f"{STEPS * DT:g} ms at dt = {DT} ms ({STEPS} steps; N = 10⁷: {STEPS_AT_1E7} steps), per-neuron constant current, "
        f"nothing recorded; pallas and scan keep {MAX_SPIKES} crossing slots per neuron (Hermite), plain counts "
        f"spikes only; Pallas block: {meta['pallas_block']} neurons per program. Median of the repeats after "
        "the first call; peak = the device's peak bytes in use in a fresh process.",
        "",
        "| method | dtype | N | steps | first call (s) | median (s) | neuron-steps/s | µs/step | peak MiB | × scan |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "median_s" not in r:
            lines.append(f"| {r['method']} | {r['dtype']} | {r['N']:.0e} | {r['steps']} | {r.get('error', '?')} |||||")
            continue
        ref = scan.get((r["dtype"], r["N"]))
        ratio = f"{ref['median_s'] / r['median_s']:.1f}" if ref else "–"
        peak = f"{r['peak_bytes'] / 2**20:.0f}" if r.get("peak_bytes") else "–"
        lines.append(f"| {r['method']} | {r['dtype']} | {r['N']:.0e} | {r['steps']} | {r['first_call_s']:.2f} | "
                     f"{r['median_s']:.4f} | {r['neuron_steps_per_s']:.3g} | {r['us_per_step']:.2f} | {peak} | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6,1e7")
    ap.add_argument("--dtypes", default=",".join(DTYPES))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per (method, dtype) worker before "
                    "it skips its remaining sizes")
    ap.add_argument("--total", type=float, default=175.0, help="seconds for the whole benchmark: workers "
                    "that would start later are skipped (reported), so that the results are always written")
    ap.add_argument("--block", type=int, default=None, help="neurons per Pallas program (a power of 2; "
                    "default: the kernel's, 128)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--worker", nargs=2, metavar=("METHOD", "DTYPE"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    sizes = [int(float(s)) for s in a.sizes.split(",")]
    if a.worker:
        _worker(*a.worker, sizes, a.repeats, a.budget, a.block)
        return 0
    _gpu_or_exit()
    rows, failed = [], False
    start = time.perf_counter()
    for dtype_name in a.dtypes.split(","):
        for method in a.methods.split(","):
            left = a.total - (time.perf_counter() - start)
            budget = min(a.budget, left - 20.0)  # ~20 s: start-up and the last size's overrun
            cmd = [sys.executable, "-m", "benchmarks.gpu_throughput", "--worker", method, dtype_name,
                   "--sizes", a.sizes, "--repeats", str(a.repeats), "--budget", str(budget)]
            if a.block:
                cmd += ["--block", str(a.block)]
            try:
                if budget <= 0:
                    raise RuntimeError(f"skipped: the benchmark's time budget ({a.total:.0f} s) is spent")
                p = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True, timeout=max(left, 30.0))
                out = p.stdout.strip().splitlines()
                if p.returncode != 0 or not out:
                    raise RuntimeError(f"exit {p.returncode}: {p.stderr.strip()[-500:]}")
                got = json.loads(out[-1])
            except (subprocess.TimeoutExpired, RuntimeError, json.JSONDecodeError) as e:
                got = [dict(method=method, dtype=dtype_name, N=N, steps=_steps(N), error=str(e)[:300]) for N in sizes]
            for r in got:
                failed |= "error" in r
                print(f"{method:6s} {dtype_name} N={r['N']:.0e}: "
                      + (f"{r['neuron_steps_per_s']:.3g} neuron-steps/s, first call {r['first_call_s']:.2f} s"
                         if "median_s" in r else r["error"]), flush=True)
            rows += got
    meta = dict(_versions(), pallas_block=a.block or "default (128)")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_throughput.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1) + "\n")
    (out / "gpu_throughput.md").write_text(_markdown(meta, rows))
    print(f"wrote {out / 'gpu_throughput.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
