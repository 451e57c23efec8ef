"""Worker of `benchmarks.kernel_speed`: times the fused kernel of whichever hh_jax is on PYTHONPATH.

Run as a script (``python _kernel_speed_worker.py``) with PYTHONPATH naming one source tree and
its own ``HH_JAX_CACHE_DIR``. It reads one JSON request per line on stdin and answers one JSON
line on stdout:

- ``{"op": "info"}`` → versions, device, the hh_jax file and the kernel's path;
- ``{"op": "time", "n": N, "dtype": "float32", "steps": S, "repeats": R, "max_spikes": M}`` →
  ``{"times_s": [...], "cpu_s": [...]}``: `R` timed calls (wall and process CPU time) of a jitted ``simulate(HHParams(), 10.0, duration=S·dt,
  dt=0.025, record=(), max_spikes=M, y0=steady state at −65 mV of shape N)`` (its first call per
  configuration compiles, untimed);
- ``{"op": "quit"}``.

``python _kernel_speed_worker.py --first-call`` instead prints the first call (trace + compile +
run, after JAX's own start-up) of the default ``simulate(HHParams(), 10.0, duration=100.0,
dt=0.01)`` at N = 1 in seconds, and exits.
"""

import json
import sys
import time

DT, CURRENT = 0.025, 10.0


def _first_call():
    import jax
    import jax.numpy as jnp

    import hh_jax

    jax.jit(lambda x: jnp.exp(x) + 1.0)(1.0).block_until_ready()  # JAX's one-time start-up
    p = hh_jax.HHParams()
    t = time.perf_counter()
    hh_jax.simulate(p, CURRENT, duration=100.0, dt=0.01).V.block_until_ready()
    print(json.dumps({"first_call_s": time.perf_counter() - t}), flush=True)


def main():
    if "--first-call" in sys.argv:
        return _first_call()
    import importlib.metadata as md
    import platform

    import jax
    import jax.numpy as jnp

    import hh_jax

    compiled = {}

    def runner(n, dtype, steps, max_spikes):
        key = (n, dtype, steps, max_spikes)
        if key not in compiled:
            with jax.enable_x64(dtype == "float64"):
                f = jnp.float32 if dtype == "float32" else jnp.float64
                p = hh_jax.HHParams()
                y0 = hh_jax.steady_state_at(jnp.asarray(-65.0, f), shape=n)
                fn = jax.jit(lambda p, y0: hh_jax.simulate(
                    p, CURRENT, duration=steps * DT, dt=DT, record=(), max_spikes=max_spikes,
                    y0=y0).final_state.V)
                jax.block_until_ready(fn(p, y0))  # compile
                compiled[key] = (fn, p, y0)
        return compiled[key]

    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        if op == "quit":
            break
        if op == "info":
            from hh_jax import _fused

            out = dict(hh_jax=hh_jax.__version__, hh_jax_file=hh_jax.__file__,
                       versions={k: md.version(k) for k in ("jax", "jaxlib", "equinox", "numpy")},
                       python=platform.python_version(), devices=[str(d) for d in jax.devices()],
                       backend=jax.default_backend(), kernel=str(_fused.kernel_path()),
                       threads=_fused._threads())
        elif op == "time":
            dtype = req["dtype"]
            fn, p, y0 = runner(req["n"], dtype, req["steps"], req.get("max_spikes", 0))
            times, cpus = [], []
            with jax.enable_x64(dtype == "float64"):
                for _ in range(req["repeats"]):
                    t, c = time.perf_counter(), time.process_time()
                    jax.block_until_ready(fn(p, y0))
                    times.append(time.perf_counter() - t)
                    cpus.append(time.process_time() - c)
            out = {"times_s": times, "cpu_s": cpus}
        else:
            out = {"error": f"unknown op {op!r}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
