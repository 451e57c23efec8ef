"""Work-precision: max spike-time error vs wall time, every hh_jax method and every peer.

For one neuron and for a population of N identical neurons (hh1952 preset by default,
constant current, gates at steady state at −65 mV), each scan stepper is swept over dt and each
Diffrax solver over its tolerance; the error is the max |spike time − reference| over all
spikes and neurons, against a float64 Diffrax Dopri8 solve at rtol = atol = 1e-11. A run
that misses or adds a spike has error ``inf``. Timings: compile once, then the median of
`--repeats` runs (``block_until_ready``), float64 throughout. Peers (BrainPy, Brian2, Jaxley,
NEURON …) come from ``benchmarks/_peers.py`` where installed, else they are listed as skipped.

Run: ``python -m benchmarks.work_precision`` (about 3–5 min on 2 cores) →
``benchmarks/results/work_precision.{json,md,png}``. ``--full`` sweeps more points and a
200 ms population run.
"""

import argparse
import json
import os
import platform
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import hh_jax  # noqa: E402

try:  # written by another branch; optional
    from benchmarks import _peers  # noqa: E402
except ImportError:  # pragma: no cover - depends on the checkout
    _peers = None

RESULTS = os.path.join(os.path.dirname(__file__), "results")
LEVELS = (1e-4, 1e-3, 1e-2, 1e-1)
SCAN = {
    "exp_euler": (hh_jax.ExpEuler, (0.1, 0.05, 0.025, 0.01, 0.005)),
    "exp_midpoint": (hh_jax.ExpMidpoint, (0.1, 0.05, 0.025, 0.01, 0.005)),
    "exp_rk4": (hh_jax.ExpRK4, (0.1, 0.05, 0.025, 0.0125, 0.00625)),
    "rk4": (hh_jax.RK4, (0.05, 0.025, 0.0125, 0.00625)),
    "euler": (hh_jax.Euler, (0.01, 0.005, 0.0025)),
}
DIFFRAX = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "kvaerno5": diffrax.Kvaerno5,
}
TOLS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)


def _timed(fn, repeats):
    out = fn()
    jax.block_until_ready(out)  # compile + first run
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return out, times


def _spike_lists(result, n):
    st = np.asarray(result.spike_times).reshape(result.spike_times.shape[0], -1)
    return [st[np.isfinite(st[:, i]), i] for i in range(n)]


def _error(spikes, ref):
    worst = 0.0
    for s in spikes:
        if len(s) != len(ref):
            return float("inf")
        if len(s):
            worst = max(worst, float(np.max(np.abs(np.asarray(s) - ref))))
    return worst


def reference(params, current, duration):
    r = hh_jax.simulate(params, current, duration=duration, dt=0.1, record=(), backend=hh_jax.DiffraxAdapter(
        diffrax.Dopri8(), stepsize_controller=diffrax.PIDController(rtol=1e-11, atol=1e-11)))
    return _spike_lists(r, 1)[0]


def sweep(params, current, duration, n, ref, repeats, full):
    rows = []
    shape = () if n == 1 else (n,)
    y0 = hh_jax.steady_state_at(-65.0, shape=shape)
    small = n > 1 and not full  # the population case: a coarser sweep by default
    for name, (cls, dts) in SCAN.items():
        for dt in dts if full else (dts[:3] if small else dts[:4]):
            fn = jax.jit(lambda p, dt=dt, cls=cls: hh_jax.simulate(
                p, current, duration=duration, dt=dt, stepper=cls(), y0=y0, record=(),
                throw=False))
            out, times = _timed(lambda: fn(params), 1 if small else repeats)
            rows.append(dict(method=name, kind="scan", setting=f"dt={dt}", dt=dt,
                             error_ms=_error(_spike_lists(out, n), ref), **_stats(times, n, duration / dt)))
            print(f"  N={n} {name:13s} dt={dt:<8g} err={rows[-1]['error_ms']:.3g} t={rows[-1]['median_s']:.4f}s", flush=True)
    for name, cls in DIFFRAX.items():
        tols = TOLS if full else TOLS[1::2]
        if name == "kvaerno5":
            tols = tols[1:3]  # at rtol 1e-4 it misses spikes; it is slow, see the docs
            if small:
                continue
        if small:
            tols = tols[:2]
        for tol in tols:
            ctrl = diffrax.PIDController(rtol=tol, atol=tol)
            fn = jax.jit(lambda p, cls=cls, ctrl=ctrl: hh_jax.simulate(
                p, current, duration=duration, dt=0.1, backend=hh_jax.DiffraxAdapter(cls(), stepsize_controller=ctrl),
                y0=y0, record=(), throw=False))
            out, times = _timed(lambda: fn(params), 1 if small else max(1, repeats // 2))
            rows.append(dict(method=name, kind="diffrax", setting=f"rtol=atol={tol:g}", tol=tol,
                             error_ms=_error(_spike_lists(out, n), ref), **_stats(times, n, None)))
            print(f"  N={n} {name:13s} tol={tol:<7g} err={rows[-1]['error_ms']:.3g} t={rows[-1]['median_s']:.4f}s", flush=True)
    return rows


def _stats(times, n, steps):
    med = statistics.median(times)
    out = dict(median_s=med, min_s=min(times), max_s=max(times), repeats=len(times))
    if steps is not None:
        out["neuron_steps_per_s"] = n * steps / med
    return out


def peer_rows(preset, current, duration, n, ref, repeats, full):
    if _peers is None:
        return [], {"all": "benchmarks/_peers.py not importable"}
    rows, skipped = [], {}
    available = _peers.available_peers()
    for name, methods in _peers.PEER_METHODS.items():
        if name not in available:
            skipped[name] = "not installed"
            continue
        for method in methods:
            for dt in ((0.1, 0.05, 0.025, 0.01, 0.005) if full else (0.1, 0.025, 0.01)):
                try:
                    out = _peers.run_peer(name, method=method, preset=preset, n=n, duration=duration,
                                          dt=dt, current=current, want_spike_times=True,
                                          repeats=repeats)
                except Exception as e:  # a peer failing is reported, not fatal
                    skipped[f"{name}/{method}/dt={dt}"] = f"{type(e).__name__}: {e}"
                    continue
                rows.append(dict(method=f"{name}:{method}", kind="peer", setting=f"dt={dt}", dt=dt,
                                 version=available[name], error_ms=_error(out["spike_times"], ref),
                                 median_s=out["median_s"], times_s=out.get("times_s")))
                print(f"  N={n} {name}:{method} dt={dt} err={rows[-1]['error_ms']:.3g} t={out['median_s']:.4f}s", flush=True)
    return rows, skipped


def fastest(rows, level, kinds):
    ok = [r for r in rows if r["kind"] in kinds and r["error_ms"] <= level]
    return min(ok, key=lambda r: r["median_s"]) if ok else None


def summary(rows):
    out = []
    for level in LEVELS:
        ours = fastest(rows, level, ("scan", "diffrax"))
        peer = fastest(rows, level, ("peer",))
        out.append(dict(
            level_ms=level,
            hh_jax=None if ours is None else f"{ours['method']} {ours['setting']}",
            hh_jax_s=None if ours is None else ours["median_s"],
            peer=None if peer is None else f"{peer['method']} {peer['setting']}",
            peer_s=None if peer is None else peer["median_s"],
            speedup=None if (ours is None or peer is None) else peer["median_s"] / ours["median_s"],
        ))
    return out


def population_modes(params, n, duration, repeats):
    """Diffrax population modes: one batched ODE vs vmapped ODEs (heterogeneous currents)."""
    current = hh_jax.Constant(jnp.linspace(6.0, 14.0, n))
    out = {}
    for mode, population in (("batched", hh_jax.BatchedODE()), ("vmap", hh_jax.PerNeuronODE())):
        fn = jax.jit(lambda p, population=population: hh_jax.simulate(
            p, current, duration=duration, dt=0.1, record=(), throw=False,
            backend=hh_jax.DiffraxAdapter(diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6),
                                          population=population)))
        _, times = _timed(lambda: fn(params), repeats)
        out[mode] = statistics.median(times)
        print(f"  population={mode}: {out[mode]:.3f}s (N={n}, {duration} ms, Tsit5 1e-6)", flush=True)
    return dict(n=n, duration_ms=duration, solver="Tsit5 rtol=atol=1e-6", median_s=out)


def markdown(res) -> str:
    lines = [f"# Work-precision (preset {res['preset']}, I = {res['current']} uA/cm^2, float64)", "",
             f"Device {res['device']}, {res['cores']} cores; jax {res['versions']['jax']}, "
             f"diffrax {res['versions']['diffrax']}. Error: max |spike time − reference| (ms) "
             "vs Dopri8 at rtol = atol = 1e-11. Time: median wall time of a whole run.", ""]
    for case in res["cases"]:
        lines += [f"## N = {case['n']}, {case['duration_ms']} ms", "",
                  "| method | setting | max error (ms) | median time (s) |", "|---|---|---|---|"]
        for r in sorted(case["rows"], key=lambda r: (r["method"], r["median_s"])):
            lines.append(f"| {r['method']} | {r['setting']} | {r['error_ms']:.2e} | {r['median_s']:.4g} |")
        lines += ["", "| accuracy (ms) | fastest hh_jax | time (s) | fastest peer | time (s) | speed-up |",
                  "|---|---|---|---|---|---|"]
        for s in case["summary"]:
            f = lambda v, fmt: "—" if v is None else format(v, fmt)
            lines.append(f"| {s['level_ms']:g} | {s['hh_jax'] or '—'} | {f(s['hh_jax_s'], '.4g')} | "
                         f"{s['peer'] or '—'} | {f(s['peer_s'], '.4g')} | {f(s['speedup'], '.2f')} |")
        if case["skipped"]:
            lines += ["", "Peers skipped: " + "; ".join(f"{k} ({v})" for k, v in case["skipped"].items())]
        lines.append("")
    pm = res.get("population_modes")
    if pm:
        lines += ["## Diffrax population modes", "",
                  f"N = {pm['n']}, {pm['duration_ms']} ms, currents 6–14 uA/cm^2, {pm['solver']}: "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in pm["median_s"].items()), ""]
    return "\n".join(lines)


def plot(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(res["cases"]), figsize=(6 * len(res["cases"]), 4.5), squeeze=False)
    for ax, case in zip(axes[0], res["cases"]):
        methods = sorted({r["method"] for r in case["rows"]})
        for m in methods:
            pts = sorted((r["median_s"], r["error_ms"]) for r in case["rows"]
                         if r["method"] == m and np.isfinite(r["error_ms"]) and r["error_ms"] > 0)
            if pts:
                style = "--" if any(r["kind"] == "peer" for r in case["rows"] if r["method"] == m) else "-"
                ax.loglog(*zip(*pts), style, marker="o", label=m)
        ax.axhspan(1e-4, 1e-1, color="0.92", zorder=0)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("max spike-time error (ms)")
        ax.set_title(f"N = {case['n']}, {case['duration_ms']} ms")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="hh1952")
    ap.add_argument("--current", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=200.0, help="ms, N = 1 run")
    ap.add_argument("--n", type=int, default=10_000, help="population size of the second case")
    ap.add_argument("--pop-duration", type=float, default=None,
                    help="ms, population run (default: 50, or --duration with --full)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="denser sweeps, 200 ms population run")
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args(argv)
    pop_duration = args.pop_duration or (args.duration if args.full else 50.0)
    params = hh_jax.HHParams.from_preset(args.preset)
    res = dict(preset=args.preset, current=args.current, device=str(jax.devices()[0]),
               cores=os.cpu_count(), platform=platform.platform(),
               versions={"jax": jax.__version__, "diffrax": diffrax.__version__,
                         "hh_jax": hh_jax.__version__}, cases=[])
    for n, duration in ((1, args.duration), (args.n, pop_duration)):
        print(f"N = {n}, {duration} ms", flush=True)
        ref = reference(params, args.current, duration)
        rows = sweep(params, args.current, duration, n, ref, args.repeats, args.full)
        prow, skipped = peer_rows(args.preset, args.current, duration, n, ref, args.repeats, args.full)
        rows += prow
        res["cases"].append(dict(n=n, duration_ms=duration, reference_spikes=len(ref), rows=rows,
                                 skipped=skipped, summary=summary(rows)))
    res["population_modes"] = population_modes(params, 1000, 50.0, args.repeats)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "work_precision.json"), "w") as f:
        json.dump(res, f, indent=1, default=float)
    with open(os.path.join(args.out, "work_precision.md"), "w") as f:
        f.write(markdown(res))
    plot(res, os.path.join(args.out, "work_precision.png"))
    print(markdown(res))


if __name__ == "__main__":
    main()
