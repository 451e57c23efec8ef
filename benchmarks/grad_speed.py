"""Gradient speed, side by side: ``python -m benchmarks.grad_speed [--sizes 1,1000] [--big] [--repeats 5] [--no-peers]``.

Workload (issue 14): L = Σ V² over 100 ms at dt = 0.025 ms (4 000 steps, V recorded at every
step), I = 10 µA/cm², differentiated with respect to (gNa, gK, gL), for N neurons (the same
parameters for all, a per-neuron constant current between 6 and 14 µA/cm²), float32 and float64.
Timed, each compiled once (first call reported separately: trace + compile + run of `jax.grad`),
then the median of `repeats` calls with ``block_until_ready``. Up to N = 10³ the calls are
interleaved (each round calls every variant once, so that all see the same machine load); above,
each variant runs its repeats back to back after one warm call (`--large-repeats`, 3): there a
variant's gigabytes of freshly mapped buffers would otherwise be timed against whichever variant
ran before it (a fit calls the same gradient again and again, with its allocator warm).
`--isolate` runs each variant above N = 10³ in its own fresh process (``--worker``), as the
peers always are:

- ``hh_jax grad``: ``jax.grad`` of ``simulate(...).V`` squared and summed, the default path: on
  the CPU the fused kernel forward and its discrete adjoint (`FusedAdjoint`, checkpoints every
  ⌈√T⌉ steps);
- ``hh_jax grad scan-derivative``: ``FusedCPU(ScanLoop())``: the kernel's forward, derivatives
  through the `lax.scan` loop (the previous default);
- ``hh_jax grad scan`` / ``scan checkpoint``: ``backend=ScanLoop()`` (the GPU path), with
  ``checkpoint=True`` for O(√T) memory;
- ``hh_jax forward``: the loss alone (the fused kernel);
- ``plain scan grad``: a 40-line JAX `lax.scan` of `hh_jax._model.exp_euler_step` with
  ``jax.checkpoint`` on the step (no spike detection), the issue's reference;
- ``jaxley grad`` (peer, in its own venv and process: ``make peers``): ``jax.grad`` of
  ``jx.integrate(..., checkpoint_lengths=[80, 50])``, one compartment with Jaxley's ``HH``
  channel vmapped over the currents, its default ``bwd_euler`` solver; its forward without
  checkpointing.

Memory: for the JAX variants in this process, the bytes XLA plans for the compiled call
(``memory_analysis``: temporaries + outputs; the fused kernels' own per-thread buffers, a few
hundred kB, are not in it); for Jaxley, the peak RSS of its worker process (~480 MB of which is
importing and compiling Jaxley). `--big` adds N = 10⁵ (many minutes on 2 cores; variants whose
estimated memory exceeds `--max-gb` are skipped, saying so). Writes ``results/grad_speed.json``
and ``.md``.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import hh_jax  # noqa: E402
from hh_jax import _model  # noqa: E402

from ._report import write_results  # noqa: E402

HERE = Path(__file__).resolve().parent
DURATION, DT = 100.0, 0.025


def plain_scan_loss(g, I, *, dtype, n_steps=int(round(DURATION / DT)), dt=DT, checkpoint=True):
    """Σ V² of a plain `lax.scan` of the model's exponential-Euler step (the reference)."""
    params = hh_jax.HHParams()
    params = eqx.tree_at(lambda p: (p.gNa, p.gK, p.gL), params, (g[0], g[1], g[2]))
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), params)
    V0 = jnp.full(I.shape, -65.0, dtype)
    m0, h0, n0 = _model.steady_states(V0)
    dt = jnp.asarray(dt, dtype)

    def step(y, _):
        y = _model.exp_euler_step(params, *y, I, dt, True)
        return y, y[0]

    if checkpoint:
        step = jax.checkpoint(step)
    _, Vs = jax.lax.scan(step, (V0, m0, h0, n0), None, length=n_steps)
    return jnp.sum(V0 * V0) + jnp.sum(Vs * Vs)


def hh_loss(g, I, *, dtype, backend=None):
    """Σ V² of `hh_jax.simulate` (default recording: V at every step, spikes detected)."""
    params = hh_jax.HHParams()
    params = eqx.tree_at(lambda p: (p.gNa, p.gK, p.gL), params, (g[0], g[1], g[2]))
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), params)
    r = hh_jax.simulate(params, I, duration=DURATION, dt=DT, backend=backend)
    return jnp.sum(r.V * r.V)


def variants(dtype):
    loss = lambda backend: (lambda g, I: hh_loss(g, I, dtype=dtype, backend=backend))
    return {
        "hh_jax grad": jax.grad(loss(None)),
        "hh_jax grad scan-derivative": jax.grad(loss(hh_jax.FusedCPU(hh_jax.ScanLoop()))),
        "hh_jax grad scan": jax.grad(loss(hh_jax.ScanLoop())),
        "hh_jax grad scan checkpoint": jax.grad(loss(hh_jax.ScanLoop(checkpoint=True))),
        "hh_jax forward": loss(None),
        "plain scan grad": jax.grad(lambda g, I: plain_scan_loss(g, I, dtype=dtype)),
        "plain scan forward": lambda g, I: plain_scan_loss(g, I, dtype=dtype, checkpoint=False),
    }





def compile_first(f, args):
    """``(compiled f, the time of its first call (trace + compile + run), s, its output, the bytes
    XLA plans for it (temporaries + outputs))``."""
    t = time.perf_counter()
    compiled = jax.jit(f).lower(*args).compile()
    t_compile = time.perf_counter() - t
    m = compiled.memory_analysis()
    nbytes = int(m.temp_size_in_bytes + m.output_size_in_bytes)
    return compiled, t_compile, nbytes


def timed(f, args):
    t, c = time.perf_counter(), time.process_time()
    jax.block_until_ready(f(*args))
    return time.perf_counter() - t, time.process_time() - c


def _isolated(name: str, n: int, dtype_name: str, args) -> dict:
    """Run variant `name` at `n`, `dtype_name` in a fresh process of this script (`_worker`):
    its first call, then `--large-repeats` calls back to back after a warm one (``times``:
    (wall, CPU) pairs)."""
    import json
    import subprocess

    cmd = [sys.executable, "-m", "benchmarks.grad_speed", "--worker", f"{name}|{n}|{dtype_name}",
           "--large-repeats", str(args.large_repeats), "--max-gb", str(args.max_gb)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    if proc.returncode != 0:
        return dict(skipped="failed: " + proc.stderr.strip()[-300:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _worker(args) -> int:
    """One variant in this process (``--worker name|n|dtype``); prints one JSON line."""
    import json

    name, n, dtype_name = args.worker.split("|")
    n, dtype = int(n), jnp.dtype(dtype_name)
    I = jnp.linspace(6.0, 14.0, n).astype(dtype) if n > 1 else jnp.full((1,), 10.0, dtype)
    g = jnp.asarray([120.0, 36.0, 0.3], dtype)
    compiled, t_compile, nbytes = compile_first(variants(dtype)[name], (g, I))
    if nbytes > args.max_gb * 2**30:
        print(json.dumps(dict(xla_bytes=nbytes, skipped=f"plans {nbytes / 2**30:.1f} GB > --max-gb")))
        return 0
    t = time.perf_counter()
    out = jax.block_until_ready(compiled(g, I))
    first = t_compile + time.perf_counter() - t
    timed(compiled, (g, I))
    times = [timed(compiled, (g, I)) for _ in range(args.large_repeats)]
    out = [float(x) for x in jnp.ravel(jnp.asarray(out))] if "grad" in name else float(out)
    print(json.dumps(dict(xla_bytes=nbytes, first_call_s=first, times=times, out=out)))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,1000")
    ap.add_argument("--big", action="store_true", help="add N = 10^5")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--large-repeats", type=int, default=3,
                    help="repeats above N = 1000, each variant back to back after a warm call")
    ap.add_argument("--isolate", action="store_true",
                    help="above N = 1000, run each variant in its own fresh process (as the peers)")
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)  # name|n|dtype: one variant, JSON out
    ap.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--no-peers", action="store_true", help="skip Jaxley")
    ap.add_argument("--max-gb", type=float, default=14.0,
                    help="skip a variant whose XLA memory plan exceeds this (GB)")
    args = ap.parse_args(argv)
    if args.worker:
        return _worker(args)
    sizes = [int(float(n)) for n in args.sizes.split(",") if n] + ([10**5] if args.big else [])
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    n_steps = int(round(DURATION / DT))
    rows, t_start = [], time.perf_counter()
    for dtype_name in args.dtypes.split(","):
        dtype = jnp.dtype(dtype_name)
        for n in sizes:
            I = jnp.linspace(6.0, 14.0, n).astype(dtype) if n > 1 else jnp.full((1,), 10.0, dtype)
            g = jnp.asarray([120.0, 36.0, 0.3], dtype)
            ref, fs, memory, worker_times = None, {}, {}, {}
            isolated = args.isolate and n > 1000
            for name, f in variants(dtype).items():
                if isolated and (not only or name in only):  # its own fresh process
                    w = _isolated(name, n, dtype_name, args)
                    memory[name] = w.get("xla_bytes", 0)
                    if "skipped" in w:
                        rows.append(dict(impl=name, n=n, dtype=dtype_name, steps=n_steps, **w))
                        print(f"{dtype_name} N={n:>6} {name:28s} skipped: {w['skipped']}", flush=True)
                        continue
                    fs[name] = (None, w["first_call_s"], w["out"])
                    worker_times[name] = [tuple(t) for t in w["times"]]
                    print(f"{dtype_name} N={n:>6} {name:28s} first call {w['first_call_s']:6.2f} s "
                          "(own process)", flush=True)
                    continue
                if not only or name in only:
                    compiled, t_compile, memory[name] = compile_first(f, (g, I))
                    if memory[name] > args.max_gb * 2**30:
                        rows.append(dict(impl=name, n=n, dtype=dtype_name, steps=n_steps,
                                         xla_bytes=memory[name],
                                         skipped=f"plans {memory[name] / 2**30:.1f} GB > --max-gb"))
                        print(f"{dtype_name} N={n:>6} {name:28s} skipped: {rows[-1]['skipped']}", flush=True)
                        continue
                    t = time.perf_counter()
                    out = jax.block_until_ready(compiled(g, I))
                    fs[name] = (compiled, t_compile + time.perf_counter() - t, out)
                    print(f"{dtype_name} N={n:>6} {name:28s} first call {fs[name][1]:6.2f} s", flush=True)
            times = {name: [] for name in fs}
            if n <= 1000:  # interleaved: each round times every variant once (same machine load for all)
                reps = args.repeats
                for _ in range(reps):
                    for name, (f, _, _) in fs.items():
                        times[name].append(timed(f, (g, I)))
            else:  # each variant's repeats back to back, after a warm call
                reps = args.large_repeats
                for name, (f, _, _) in fs.items():
                    if isolated:
                        times[name] = worker_times[name]
                        continue
                    timed(f, (g, I))
                    times[name] = [timed(f, (g, I)) for _ in range(reps)]
            for name, (f, first, out) in fs.items():
                wall, cpu = [t[0] for t in times[name]], [t[1] for t in times[name]]
                med = statistics.median(wall)
                row = dict(impl=name, n=n, dtype=dtype_name, steps=n_steps, first_call_s=first,
                           median_s=med, times_s=wall, cpu_median_s=statistics.median(cpu),
                           neuron_steps_per_s=n * n_steps / med, xla_bytes=memory[name])
                if "grad" in name:
                    row["grad"] = [float(x) for x in out]
                    if name == "plain scan grad":
                        ref = row["grad"]
                rows.append(row)
                print(f"{dtype_name} N={n:>6} {name:28s} median {med * 1e3:9.2f} ms"
                      f"  CPU {row['cpu_median_s'] * 1e3:9.2f} ms", flush=True)
            if not args.no_peers and (not only or "jaxley grad" in only):
                from ._peers import run_peer_grad

                p = run_peer_grad("jaxley", n=n, dtype=dtype_name, repeats=reps if n <= 1000 else 1,
                                  preset="hh1952", timeout=max(600.0, n * 0.02))
                if "skipped" in p:
                    rows.append(dict(impl="jaxley grad", n=n, dtype=dtype_name, steps=n_steps,
                                     skipped=p["skipped"]))
                else:
                    rows.append(dict(impl="jaxley grad", n=n, dtype=dtype_name, steps=n_steps,
                                     first_call_s=p["compile_s"], median_s=p["median_s"],
                                     times_s=p["times_s"], neuron_steps_per_s=n * n_steps / p["median_s"],
                                     forward_median_s=p.get("forward_median_s"),
                                     peak_rss_mb=p.get("peak_rss_mb"), version=p.get("version"),
                                     method=p.get("method"), grad=p.get("grad")))
                print(f"{dtype_name} N={n:>6} jaxley grad: {rows[-1].get('median_s', rows[-1].get('skipped'))}",
                      flush=True)
            for r in rows:
                if r["n"] == n and r["dtype"] == dtype_name and "grad" in r and ref is not None:
                    r["max_rel_diff_vs_plain"] = max(abs(a - b) / abs(b) for a, b in zip(r["grad"], ref))
    result = dict(
        environment=dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), platform=platform.platform(),
                         cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                         load_avg=os.getloadavg(), backend=jax.default_backend(),
                         devices=[str(d) for d in jax.devices()],
                         versions=dict(jax=jax.__version__, equinox=eqx.__version__,
                                       hh_jax=hh_jax.__version__)),
        workload=dict(duration_ms=DURATION, dt_ms=DT, steps=n_steps, loss="sum V^2",
                      wrt="(gNa, gK, gL)", current="linspace(6, 14, N) uA/cm^2 (10 at N = 1)"),
        repeats=args.repeats, large_repeats=args.large_repeats, isolate=args.isolate, rows=rows,
        wall_s=time.perf_counter() - t_start)
    cmd = "python -m benchmarks.grad_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results(args.out, "grad_speed", result, markdown(result, cmd))


def markdown(result, command):
    env, rows = result["environment"], result["rows"]
    lines = [f"Command: `{command}`  ",
             f"Date: {env['date']}; {env['cores']} cores ({env['cpu']}), load "
             f"{', '.join(f'{x:.1f}' for x in env['load_avg'])} at the end, {env['platform']}; backend "
             f"{env['backend']}; jax {env['versions']['jax']}, equinox {env['versions']['equinox']}, "
             f"hh_jax {env['versions']['hh_jax']}.", "",
             "L = Σ V² over 100 ms at dt = 0.025 ms (4 000 steps) w.r.t. (gNa, gK, gL). Median of "
             f"{result['repeats']} interleaved calls up to N = 10³; above, of "
             f"{result.get('large_repeats', 1)} calls per variant back to back after a warm call"
             f"{', each variant in its own process' if result.get('isolate') else ''} (Jaxley: 1), "
             "ms; first call = trace + "
             "compile + first run of the jitted function, s; × fwd = time / hh_jax's forward of the "
             "same loss (the fused kernel; same N, dtype); peer ÷ = the fastest peer's gradient "
             "time (Jaxley, plain scan) / this time; memory: XLA's plan for the call (MB), for "
             "Jaxley its process's peak RSS; rel. diff = max relative difference of the gradient "
             "from the plain scan's (Jaxley: a different scheme, bwd_euler).", "",
             "| variant | dtype | N | median ms | × fwd | peer ÷ | neuron-steps/s | first call s | memory MB | rel. diff |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    peers = ("plain scan grad", "jaxley grad")
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['impl']} | {r['dtype']} | {r['n']} | skipped: {r['skipped'][:80]} |||||||")
            continue
        same = [x for x in rows if x["n"] == r["n"] and x["dtype"] == r["dtype"] and "median_s" in x]
        fwd = [x["median_s"] for x in same if x["impl"] == "hh_jax forward"]
        peer = [x["median_s"] for x in same if x["impl"] in peers]
        ratio = f"{r['median_s'] / fwd[0]:.2f}" if fwd else "–"
        vs_peer = f"{min(peer) / r['median_s']:.2f}" if peer and "grad" in r["impl"] else ""
        mem = (f"{r['xla_bytes'] / 2**20:.0f}" if "xla_bytes" in r
               else (f"{r['peak_rss_mb']:.0f} (RSS)" if r.get("peak_rss_mb") else ""))
        diff = f"{r['max_rel_diff_vs_plain']:.1e}" if "max_rel_diff_vs_plain" in r else ""
        lines.append(f"| {r['impl']} | {r['dtype']} | {r['n']} | {r['median_s'] * 1e3:.2f} | {ratio} | "
                     f"{vs_peer} | {r['neuron_steps_per_s'] / 1e6:.2f} M | {r['first_call_s']:.2f} | "
                     f"{mem} | {diff} |")
        if r["impl"] == "jaxley grad" and r.get("forward_median_s"):
            lines.append(f"| jaxley forward | {r['dtype']} | {r['n']} | {r['forward_median_s'] * 1e3:.2f} "
                         "|||||||")
    lines += ["", f"Total benchmark wall time {result['wall_s']:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
