"""Fitting benchmark (issue 5): multi-start recovery, spike-time fit, gradient cost, memory.

Run: ``PYTHONPATH=. python benchmarks/fit_benchmark.py [gradient_cost memory spike_time_fit recovery]`` (about 10 min on 2 CPU cores).
Writes ``benchmarks/results/fit_benchmark.{json,md}``.
"""

import json
import os
import platform
import statistics
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import hh_jax  # noqa: E402
import hh_jax.fit as hf  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results")
TRUTH = hh_jax.HHParams.hh1952()
DT = 0.025
AMPS = jnp.array([5.0, 10.0, 20.0])


def _timeit(f, repeats=5):
    jax.block_until_ready(f())  # compile
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f())
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts), max(ts)


def _rel_errors(space, u):
    vals = space.values(u)
    return np.stack([np.abs(np.asarray(vals[n]) / float(getattr(TRUTH, n)) - 1) for n in space.names], 1)


def recovery(n_starts=16):
    stim = hh_jax.Step(AMPS)
    r = hh_jax.simulate(TRUTH, stim, duration=100.0, dt=DT)
    V = r.V + 1.0 * jax.random.normal(jax.random.key(1), r.V.shape)
    obj = hf.TraceObjective(stim, V, dt=DT)
    space = hf.ParamSpace(TRUTH, ("gNa", "gK", "gL", "ENa", "EK"))
    stages = [  # (label, objective, steps, optimizer or None for Levenberg–Marquardt)
        ("Adam, teacher-forced 0.5 ms, 100 ms", obj.window(horizon=0.5), 60, optax.adam(0.05)),
        ("Adam, free run, first 25 ms", obj.window(25.0), 100, optax.adam(0.02)),
        ("Levenberg–Marquardt, first 25 ms", obj.window(25.0), 20, None),
        ("Levenberg–Marquardt, 100 ms", obj, 20, None),
    ]
    res, log, t0 = None, [], time.perf_counter()
    for label, o, steps, opt in stages:
        t = time.perf_counter()
        if opt is None:
            res = hf.polish(o, res, max_steps=steps)
        else:
            res = hf.optimize(o, space, n_starts=n_starts, steps=steps, init=res, key=jax.random.key(3),
                         optimizer=opt, progress=False)
        err = _rel_errors(space, res.best_u).max(1)
        log.append({"stage": label, "steps": steps, "wall_s": time.perf_counter() - t,
                    "starts_within_2pct": int(np.sum(err < 0.02)),
                    "median_max_rel_err": float(np.median(err))})
        print(log[-1], flush=True)
    wall = time.perf_counter() - t0
    err = _rel_errors(space, res.best_u)
    best = int(np.argmin(np.asarray(res.best_loss)))
    return {
        "n_starts": n_starts, "wall_s": wall, "stages": log,
        "fraction_within_2pct": float(np.mean(err.max(1) < 0.02)),
        "best_start_max_rel_err": float(err[best].max()),
        "best_start_rel_err": dict(zip(space.names, map(float, err[best]))),
        "best_values": res.values(), "best_loss_mV2": float(res.loss),
        "per_start_max_rel_err": [float(e) for e in err.max(1)],
        "rejected_steps": int(np.sum(res.n_rejected)),
        "loss_at_truth_mV2": float(obj(TRUTH)),
    }


def spike_time_fit(n_starts=8):
    stim = hh_jax.Step(AMPS)
    r = hh_jax.simulate(TRUTH, stim, duration=100.0, dt=DT, record=())
    obj = hf.SpikeTimeObjective(stim, r.spike_times, dt=DT, duration=100.0)
    space = hf.ParamSpace(TRUTH, ("gNa", "gK"))
    t = time.perf_counter()
    res = hf.optimize(obj, space, n_starts=n_starts, steps=200, rel=0.3, key=jax.random.key(5),
                 optimizer=optax.adam(0.02), progress=False)
    res = hf.polish(obj, res, max_steps=20)
    err = _rel_errors(space, res.best_u)
    best = int(np.argmin(np.asarray(res.best_loss)))
    return {"n_starts": n_starts, "start_range": "±30 %", "method": "200 Adam steps, then Levenberg–Marquardt", "wall_s": time.perf_counter() - t,
            "best_rel_err": dict(zip(space.names, map(float, err[best]))),
            "fraction_within_5pct": float(np.mean(err.max(1) < 0.05)),
            "best_loss_ms2": float(res.loss)}


def gradient_cost():
    stim = hh_jax.Step(AMPS)
    r = hh_jax.simulate(TRUTH, stim, duration=100.0, dt=DT)
    obj = hf.TraceObjective(stim, r.V, dt=DT)
    space = hf.ParamSpace(TRUTH, ("gNa", "gK", "gL", "ENa", "EK"))
    u = space.to_unconstrained(TRUTH.replace(gNa=110.0))
    fwd = jax.jit(lambda u: obj(space.to_params(u)))
    grad = jax.jit(jax.value_and_grad(lambda u: obj(space.to_params(u))))
    tf, tg = _timeit(lambda: fwd(u)), _timeit(lambda: grad(u))
    out = {"trace": "3 protocols x 100 ms, dt 0.025 ms (4000 steps)",
           "forward_s": tf, "value_and_grad_s": tg, "ratio": tg[0] / tf[0]}
    # the configuration of a fit: 16 starts vmapped (3 x 16 = 48 neurons per scan)
    U = space.sample(jax.random.key(0), 16)
    fwd16 = jax.jit(jax.vmap(lambda u: obj(space.to_params(u))))
    grad16 = jax.jit(jax.vmap(jax.value_and_grad(lambda u: obj(space.to_params(u)))))
    tf, tg = _timeit(lambda: fwd16(U)), _timeit(lambda: grad16(U))
    out.update(forward_16_starts_s=tf, value_and_grad_16_starts_s=tg, ratio_16_starts=tg[0] / tf[0])
    # forward mode (one JVP per fitted field, through the scan loop's tangents)
    fm16 = jax.jit(jax.vmap(hf.value_and_grad(obj, space, mode=hf.ForwardMode())))
    fm1 = jax.jit(hf.value_and_grad(obj, space, mode=hf.ForwardMode()))
    t1, t16 = _timeit(lambda: fm1(u)), _timeit(lambda: fm16(U))
    out.update(forward_mode_s=t1, ratio_forward_mode=t1[0] / out["forward_s"][0],
               forward_mode_16_starts_s=t16, ratio_forward_mode_16_starts=t16[0] / tf[0])
    return out


MEMORY_VARIANTS = {
    "fused adjoint (default)": lambda: hh_jax.FusedCPU(),
    "scan derivative": lambda: hh_jax.FusedCPU(hh_jax.ScanLoop()),
    "scan derivative, checkpointed": lambda: hh_jax.FusedCPU(hh_jax.ScanLoop(checkpoint=True)),
}


def memory(n_steps=100_000):
    """XLA's temporary buffers of the reverse-mode gradient, one neuron: trace MSE at 10⁴ and
    `n_steps` steps; the gradient of the final V (no trace) at 10⁴–10⁶ steps."""
    out = {}
    for steps in (10_000, n_steps):
        duration = steps * DT
        V = jnp.full((steps + 1,), -65.0)
        space = hf.ParamSpace(TRUTH, ("gNa", "gK"))
        u = space.to_unconstrained(TRUTH)
        for name, backend in MEMORY_VARIANTS.items():
            obj = hf.TraceObjective(hh_jax.Constant(10.0), V, dt=DT, duration=duration, backend=backend())
            g = jax.jit(jax.grad(lambda u: obj(space.to_params(u))))
            ma = g.lower(u).compile().memory_analysis()
            t = _timeit(lambda: g(u), repeats=2)[0]
            out[f"trace|{steps}|{name}"] = {"temp_MB": ma.temp_size_in_bytes / 1e6, "grad_s": t}
            print(steps, name, out[f"trace|{steps}|{name}"], flush=True)
    # without a recorded trace (a loss on the final state): only the loop's own residuals remain
    for steps in (10_000, 100_000, 1_000_000):
        for name, backend in MEMORY_VARIANTS.items():
            def loss(g, steps=steps, backend=backend):
                r = hh_jax.simulate(TRUTH.replace(gNa=g), 10.0, duration=steps * DT, dt=DT, record=(),
                                    max_spikes=0, throw=False, backend=backend())
                return r.final_state.V
            ma = jax.jit(jax.grad(loss)).lower(120.0).compile().memory_analysis()
            out[f"final|{steps}|{name}"] = {"temp_MB": ma.temp_size_in_bytes / 1e6}
            print(steps, "no trace", name, ma.temp_size_in_bytes / 1e6, flush=True)
    return out


def main():
    info = {"device": str(jax.devices()[0]), "cores": os.cpu_count(), "python": platform.python_version(),
            "jax": jax.__version__, "optax": optax.__version__, "dtype": "float64"}
    path = os.path.join(OUT, "fit_benchmark.json")
    results = json.load(open(path)) if len(sys.argv) > 1 and os.path.exists(path) else {}
    results["info"] = info
    for name, f in (("gradient_cost", gradient_cost), ("memory", memory),
                    ("spike_time_fit", spike_time_fit), ("recovery", recovery)):
        if len(sys.argv) > 1 and name not in sys.argv[1:]:
            continue
        print("==", name, flush=True)
        results[name] = f()
        print(json.dumps(results[name], indent=1), flush=True)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "fit_benchmark.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    with open(os.path.join(OUT, "fit_benchmark.md"), "w") as fh:
        fh.write(_markdown(results))


def _markdown(r):
    lines = [f"# Fitting benchmark\n\n{r['info']}\n"]
    if "recovery" in r:
        x = r["recovery"]
        lines += ["## Multi-start recovery (gNa, gK, gL, ENa, EK; 3 steps 5/10/20 µA/cm²; σ = 1 mV)\n",
                  "| stage | steps | wall (s) | starts within 2 % | median max rel. error |", "|---|---|---|---|---|"]
        lines += [f"| {s['stage']} | {s['steps']} | {s['wall_s']:.1f} | {s['starts_within_2pct']}/{x['n_starts']} "
                  f"| {100 * s['median_max_rel_err']:.2f} % |" for s in x["stages"]]
        lines += [f"\nFraction of starts within 2 %: **{x['fraction_within_2pct']:.2f}**; best start's worst "
                  f"parameter error: **{100 * x['best_start_max_rel_err']:.2f} %**; total wall time "
                  f"**{x['wall_s']:.0f} s**; best loss {x['best_loss_mV2']:.4f} mV² (loss at the true parameters {x['loss_at_truth_mV2']:.4f}).\n"]
    if "spike_time_fit" in r:
        x = r["spike_time_fit"]
        lines += [f"## Spike-time-only fit (gNa, gK; {x['n_starts']} starts {x['start_range']})\n",
                  f"best start: gNa error {100 * x['best_rel_err']['gNa']:.2f} %, gK error "
                  f"{100 * x['best_rel_err']['gK']:.2f} %; starts within 5 %: {x['fraction_within_5pct']:.2f}; "
                  f"wall {x['wall_s']:.0f} s.\n"]
    if "gradient_cost" in r:
        x = r["gradient_cost"]
        lines += ["## Gradient cost (" + x["trace"] + ")\n",
                  f"forward {1e3 * x['forward_s'][0]:.1f} ms (min {1e3 * x['forward_s'][1]:.1f}, max {1e3 * x['forward_s'][2]:.1f}); "
                  f"value+grad {1e3 * x['value_and_grad_s'][0]:.1f} ms; ratio **{x['ratio']:.2f}×** (one start).\n"]
        if "ratio_forward_mode" in x:
            lines += [f"forward-mode gradient (5 JVPs through the scan loop's tangents): one start {1e3 * x['forward_mode_s'][0]:.1f} ms, "
                      f"ratio **{x['ratio_forward_mode']:.2f}×**; 16 starts {1e3 * x['forward_mode_16_starts_s'][0]:.1f} ms, "
                      f"ratio **{x['ratio_forward_mode_16_starts']:.2f}×**.\n"]
        if "ratio_16_starts" in x:
            lines += [f"16 starts vmapped: forward {1e3 * x['forward_16_starts_s'][0]:.1f} ms, value+grad "
                      f"{1e3 * x['value_and_grad_16_starts_s'][0]:.1f} ms; ratio **{x['ratio_16_starts']:.2f}×**.\n"]
    if "memory" in r:
        lines += ["## Gradient memory (XLA temp buffers, one neuron)\n", "| steps | derivative | temp MB | grad time (s) |",
                  "|---|---|---|---|"]
        for k, v in r["memory"].items():
            kind, steps, name = k.split("|") if "|" in k else ("old", "", k)
            if kind == "trace":
                lines.append(f"| {steps} | {name} | {v['temp_MB']:.2f} | {v['grad_s']:.2f} |")
        lines += ["\nWithout a recorded trace (gradient of the final V):\n", "| steps | derivative | temp MB |", "|---|---|---|"]
        for k, v in r["memory"].items():
            kind, steps, name = k.split("|") if "|" in k else ("old", "", k)
            if kind == "final":
                lines.append(f"| {steps} | {name} | {v['temp_MB']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
