"""hh_jax benchmark suite: ``python -m benchmarks.run [--quick | --full] [--no-peers]``.

Workload (issue 6): a population of N neurons, 100 ms at dt = 0.01 ms (10⁴ steps; 10³ steps for
N = 10⁶), constant 10 µA/cm², spike counts only (``record=()``, ``max_spikes=0``). Each
configuration is compiled once, then timed `repeats` times with ``block_until_ready``; reported:
median neuron-steps per second, spread (min–max), first call (trace + compile) time, CPU/wall
time ratio. Also: the first call of the default `simulate` in a fresh process, the gradient /
forward time ratio, peak memory of the long runs, the peers in the same run, and a plain
40-line `lax.scan` baseline. Writes ``results/bench.json``, ``results/bench.md`` and
``results/throughput.png``.

The host CPU is split into one XLA device per core *before* JAX starts, so that
`hh_jax.simulate_sharded` can use every core; ``hh_jax.simulate`` runs on one device (its fused
CPU kernel for ExpEuler starts one thread per core itself).
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

import hh_jax

N_CORES = os.cpu_count() or 1
hh_jax.use_cpu_devices(N_CORES)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from hh_jax import _fused  # noqa: E402  (the kernel's path, for the record)

from ._baseline import make_baseline  # noqa: E402
from ._peers import PEER_METHODS, available_peers, run_peer  # noqa: E402

RESULTS = Path(__file__).with_name("results")
DT, CURRENT = 0.01, 10.0


def _steps(n):
    return 1000 if n >= 10**6 else 10_000


def _timed(fn, repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(fn())
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return first, walls, cpus, out


def _row(impl, method, dtype, n, first, walls, cpus, spikes, devices=1):
    steps = _steps(n)
    med = statistics.median(walls)
    return dict(impl=impl, method=method, dtype=dtype, n=n, steps=steps, devices=devices,
                first_call_s=first, times_s=walls, median_s=med,
                neuron_steps_per_s=n * steps / med, spread=[n * steps / max(walls), n * steps / min(walls)],
                cpu_wall=statistics.median(c / w for c, w in zip(cpus, walls)), spikes=int(spikes))


def bench_hh_jax(n, dtype, stepper, sharded, repeats, wrap=True, backend=None):
    """One hh_jax configuration. ``wrap``: call it through `jax.jit` as repeated runs would
    (default); False times the plain `simulate` call with its Python-side argument checks.
    ``backend=hh_jax.ScanLoop()``: ExpEuler's `lax.scan` loop instead of the automatic choice
    (the fused CPU kernel)."""
    with jax.enable_x64(dtype == "float64"):
        p = hh_jax.HHParams()
        y0 = hh_jax.steady_state_at(jnp.asarray(-65.0, p.dtype), shape=n)
        run = hh_jax.simulate_sharded if sharded else hh_jax.simulate
        kw = dict(duration=_steps(n) * DT, dt=DT, record=(), max_spikes=0,
                  stepper=hh_jax.STEPPERS[stepper](), backend=backend)
        f = lambda p, y0: run(p, CURRENT, y0=y0, **kw).spike_count
        f = jax.jit(f) if wrap else f
        first, walls, cpus, r = _timed(lambda: f(p, y0), repeats)
        name = "hh_jax.simulate_sharded" if sharded else "hh_jax.simulate"
        name += "" if wrap else " (no jit wrapper)"
        return _row(name, stepper + (" (lax.scan)" if fused is False else ""), dtype, n, first, walls, cpus, jnp.sum(r),
                    devices=len(jax.devices()) if sharded else 1)


def bench_baseline(n, dtype, repeats):
    with jax.enable_x64(dtype == "float64"):
        f = jnp.float32 if dtype == "float32" else jnp.float64
        y = hh_jax.steady_state_at(jnp.asarray(-65.0, f), shape=n)
        args = [y.V, y.m, y.h, y.n, jnp.full(n, CURRENT, f)]
        run = make_baseline(_steps(n), DT)
        first, walls, cpus, r = _timed(lambda: run(*args), repeats)
        return _row("plain lax.scan (40 lines)", "exp_euler (simultaneous)", dtype, n, first, walls,
                    cpus, jnp.sum(r))


def bench_peer(peer, method, n, dtype, repeats):
    r = run_peer(peer, method=method, n=n, duration=_steps(n) * DT, dt=DT, current=CURRENT,
                 repeats=repeats, dtype=dtype)
    if "skipped" in r:
        return dict(impl=peer, method=method, dtype=dtype, n=n, skipped=r["skipped"])
    spikes = r["spike_counts"] if isinstance(r["spike_counts"], int) else sum(r["spike_counts"])
    row = _row(f"{peer} {r['version']}", method, dtype, n, r["compile_s"], r["times_s"], r["cpu_s"], spikes)
    return row


_FIRST_CALL = """
import time, jax, jax.numpy as jnp, hh_jax
t = time.perf_counter()
jax.jit(lambda x: jnp.exp(x) + 1.0)(1.0).block_until_ready()  # JAX's one-time start-up
warm = time.perf_counter() - t
p = hh_jax.HHParams()
t = time.perf_counter()
r = hh_jax.simulate(p, 10.0, duration=100.0, dt=0.01)
r.V.block_until_ready()
print(warm, time.perf_counter() - t)
"""


def first_call(repeats=3):
    """Trace + compile + run of the default `simulate` (f32, N = 1, 10⁴ steps, record V) in fresh
    processes, after JAX's own one-time start-up (timed separately: a trivial jitted function)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    runs = [subprocess.run([sys.executable, "-c", _FIRST_CALL], capture_output=True, text=True,
                           env=env, check=True).stdout.split()[-2:] for _ in range(repeats)]
    warm = [float(a) for a, _ in runs]
    ts = [float(b) for _, b in runs]
    return dict(times_s=ts, median_s=statistics.median(ts), jax_startup_s=statistics.median(warm))


def gradient_ratio(n=100, steps=2000, repeats=3):
    p = hh_jax.HHParams()
    y0 = hh_jax.steady_state_at(-65.0, shape=n)
    kw = dict(duration=steps * DT, dt=DT, record=(), max_spikes=0, y0=y0)
    fwd = jax.jit(lambda p: jnp.mean(hh_jax.simulate(p, CURRENT, **kw).final_state.V))
    grad = jax.jit(jax.grad(fwd))
    _, wf, _, _ = _timed(lambda: fwd(p), repeats)
    _, wg, _, _ = _timed(lambda: grad(p), repeats)
    return dict(n=n, steps=steps, forward_s=statistics.median(wf), grad_s=statistics.median(wg),
                ratio=statistics.median(wg) / statistics.median(wf))


_BIG = {
    "1e7 steps, 1 neuron (simulate_chunked)": """
import tempfile, time, hh_jax
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter()
    r = hh_jax.simulate_chunked(hh_jax.HHParams(), 10.0, duration=1e5, dt=0.01, out=d,
                                chunk_steps=10**6, record=("V",), record_every=100, progress=False)
    print(time.perf_counter() - t, int(r.spike_count), hh_jax_peak_kib())
""",
    "1e6 neurons, 1000 steps (simulate_sharded)": """
import time, hh_jax, os
hh_jax.use_cpu_devices(os.cpu_count())
p = hh_jax.HHParams()
y0 = hh_jax.steady_state_at(-65.0, shape=10**6)
t = time.perf_counter()
r = hh_jax.simulate_sharded(p, 10.0, duration=10.0, dt=0.01, record=(), max_spikes=0, y0=y0)
n = int(r.spike_count.sum())
print(time.perf_counter() - t, n, hh_jax_peak_kib())
""",
}


# Peak resident memory of THIS process image: VmHWM (ru_maxrss would carry over the forking
# parent's peak across exec on Linux).
_PEAK = """
def hh_jax_peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""


def big_runs():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = {}
    for name, code in _BIG.items():
        res = subprocess.run([sys.executable, "-c", _PEAK + code], capture_output=True, text=True, env=env)
        if res.returncode:
            out[name] = dict(error=res.stderr[-500:])
            continue
        wall, spikes, rss = res.stdout.split()[-3:]
        out[name] = dict(wall_s=float(wall), spikes=int(spikes), peak_rss_mib=int(rss) / 1024)
    return out


def environment():
    import importlib.metadata as md

    vers = {k: md.version(k) for k in ("jax", "jaxlib", "equinox", "numpy")}
    return dict(hh_jax=hh_jax.__version__, versions=vers, python=platform.python_version(),
                platform=platform.platform(), cpu=platform.processor() or platform.machine(),
                cores=N_CORES, devices=[str(d) for d in jax.devices()],
                backend=jax.default_backend(), peers=available_peers(),
                fused_kernel=_fused.kernel_path(),
                date=time.strftime("%Y-%m-%d %H:%M:%S"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="N up to 1e6, all steppers, 5 repeats")
    ap.add_argument("--quick", action="store_true", help="N in {1, 1e2, 1e4}, 3 repeats (default)")
    ap.add_argument("--no-peers", action="store_true", help="skip the peer simulators")
    ap.add_argument("--big", action="store_true", help="also the 1e7-step and 1e6-neuron runs")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--sizes", help="comma-separated population sizes, e.g. 1,10000,100000")
    ap.add_argument("--dtypes", default="float32,float64", help="comma-separated dtypes")
    ap.add_argument("--peers", help="comma-separated subset of the peers")
    ap.add_argument("--repeats", type=int, help="timed repeats per configuration")
    ap.add_argument("--default-stepper-only", action="store_true", help="skip RK4 and Euler")
    args = ap.parse_args(argv)
    sizes = [1, 100, 10**4, 10**5, 10**6] if args.full else [1, 100, 10**4, 10**5]
    if args.quick:
        sizes = [1, 100, 10**4]
    if args.sizes:
        sizes = [int(float(x)) for x in args.sizes.split(",")]
    dtypes = args.dtypes.split(",")
    peer_names = args.peers.split(",") if args.peers else list(PEER_METHODS)
    repeats = args.repeats or (5 if args.full else 3)
    rows = []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / "rows.partial.json"  # rows so far, in case the run is stopped
    log = lambda r: print({k: r.get(k) for k in ("impl", "method", "dtype", "n", "neuron_steps_per_s",
                                                  "cpu_wall", "first_call_s", "skipped")}, flush=True)
    base_repeats = repeats
    for n in sizes:
        # N = 1 runs take ~1 ms: 20 repeats (every implementation) for a stable median.
        repeats = max(base_repeats, 20) if n == 1 else base_repeats
        for dtype in dtypes:
            jobs = [lambda: bench_baseline(n, dtype, repeats),
                    lambda: bench_hh_jax(n, dtype, "exp_euler", False, repeats)]
            if n <= 10**5:
                jobs.append(lambda: bench_hh_jax(n, dtype, "exp_euler", False, repeats, backend=hh_jax.ScanLoop()))
            if n >= 100 and len(jax.devices()) > 1:
                jobs.append(lambda: bench_hh_jax(n, dtype, "exp_euler", True, repeats))
            if n in (1, 10**4):
                jobs.append(lambda: bench_hh_jax(n, dtype, "exp_euler", False, repeats, wrap=False))
            if (args.full or n == 10**4) and not args.default_stepper_only:
                jobs += [lambda s=s: bench_hh_jax(n, dtype, s, False, repeats) for s in ("rk4", "euler")]
            # Peers: float32 (NEURON: float64) at every N; float64 only up to N = 10² unless --full;
            # at N = 10⁵ only BrainPy unless --full (numba and Brian2 were 8–14x slower than
            # BrainPy at N = 10⁴ and would take ~15 min there). Two repeats from N = 10⁴ on.
            peer_repeats = repeats if n < 10**4 or args.full else min(repeats, 2)
            if not args.no_peers and n <= 10**5:
                for peer, methods in PEER_METHODS.items():
                    if peer not in peer_names:
                        continue
                    if peer == "neuron":  # float64 only; at most 10⁴ sections
                        if dtype == "float32" and n <= 10**4:
                            jobs.append(lambda m=methods[0]: bench_peer("neuron", m, n, "float64", peer_repeats))
                        continue
                    if not args.full and ((dtype == "float64" and n > 100) or (peer != "brainpy" and n > 10**4)):
                        continue
                    jobs.append(lambda peer=peer, m=methods[0]: bench_peer(peer, m, n, dtype, peer_repeats))
            for job in jobs:
                rows.append(job())
                log(rows[-1])
                partial.write_text(json.dumps(rows, indent=1))
    if not args.no_peers:
        rows.append(dict(impl="jaxley", method="-", dtype="-", n=0, skipped=(
            f"installed ({available_peers().get('jaxley', 'absent')}) but no driver written yet")))
    result = dict(environment=environment(), workload=dict(dt_ms=DT, current=CURRENT, steps=_steps(1),
                  record="()", max_spikes=0), rows=rows, first_call=first_call(),
                  gradient=gradient_ratio(), big=big_runs() if args.big else {})
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    from ._report import markdown, plot

    cmd = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "bench.md").write_text(markdown(result, cmd))
    plot(result, out / "throughput.png")
    partial.unlink(missing_ok=True)
    print((out / "bench.md").read_text())


if __name__ == "__main__":
    main()
