"""Measure how far float32 spike times drift from float64 over 1 s (default stepper).

Random physiological neurons (a population, one run per precision), each under a constant
current plus a slow sine, simulated for 1 s in float32 and in float64 with the same stepper and
dt. Reports the distribution of |t32 − t64| over all matched spikes and the spike-count
mismatches. Usage: ``python -m benchmarks.f32_vs_f64 [--n 512] [--dt 0.01] [--out DIR]``.
"""

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

import hh_jax


def draw(n, seed, i_min=-5.0, i_max=60.0, sine_max=3.0):
    rng = np.random.default_rng(seed)
    return dict(
        params=dict(
            C=rng.uniform(0.8, 1.5, n), gNa=rng.uniform(80, 160, n), ENa=rng.uniform(40, 60, n),
            gK=rng.uniform(20, 50, n), EK=rng.uniform(-85, -70, n), gL=rng.uniform(0.01, 0.5, n),
            EL=rng.uniform(-65, -50, n),
        ),
        I=rng.uniform(i_min, i_max, n),
        sine=rng.uniform(0.0, sine_max, n),
        freq=rng.uniform(1.0, 40.0, n),
    )


def run(case, dt, duration, x64):
    with jax.enable_x64(x64):
        p = hh_jax.HHParams(**case["params"])
        stim = hh_jax.Constant(case["I"]) + hh_jax.Sine(case["sine"], frequency=case["freq"])
        r = hh_jax.simulate(p, stim, duration=duration, dt=dt, record=(), max_spikes=int(duration))
        return np.asarray(r.spike_times, float), np.asarray(r.spike_count)


def compare(t32, c32, t64, c64, duration, tol_edge=1.0):
    """Per neuron: max |Δt| over matched spikes; count mismatches not explained by the end."""
    errs, bad = [], []
    for i in range(c64.shape[0]):
        k = min(c32[i], c64[i])
        if k:
            errs.append(np.max(np.abs(t32[:k, i] - t64[:k, i])))
        if c32[i] != c64[i]:
            extra = np.concatenate([t32[k:c32[i], i], t64[k:c64[i], i]])
            if abs(int(c32[i]) - int(c64[i])) > 1 or np.any(extra < duration - tol_edge):
                bad.append(i)
    return np.asarray(errs), bad


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--dt", type=float, default=0.01)
    ap.add_argument("--duration", type=float, default=1000.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--i-min", type=float, default=-5.0)
    ap.add_argument("--i-max", type=float, default=60.0)
    ap.add_argument("--sine-max", type=float, default=3.0)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args(argv)
    case = draw(a.n, a.seed, a.i_min, a.i_max, a.sine_max)
    t0 = time.perf_counter()
    t32, c32 = run(case, a.dt, a.duration, False)
    t64, c64 = run(case, a.dt, a.duration, True)
    errs, bad = compare(t32, c32, t64, c64, a.duration)
    q = np.quantile(errs, [0.5, 0.9, 0.99, 0.999, 1.0]) if len(errs) else [np.nan] * 5
    res = dict(
        neurons=a.n, I_range=[a.i_min, a.i_max], sine_max=a.sine_max, firing=int(np.sum(c64 > 0)), spikes=int(c64.sum()), dt=a.dt,
        duration=a.duration, max_abs_dt_ms=dict(zip(["median", "p90", "p99", "p99.9", "max"], map(float, q))),
        count_mismatch_neurons=len(bad),
        count_mismatch_detail=[(int(i), int(c32[i]), int(c64[i]), case["I"][i]) for i in bad][:20],
        seconds=time.perf_counter() - t0, device=str(jax.devices()[0]), jax=jax.__version__,
        cores=os.cpu_count(), python=platform.python_version(),
    )
    os.makedirs(a.out, exist_ok=True)
    name = f"f32_vs_f64_I{a.i_min:g}-{a.i_max:g}_sine{a.sine_max:g}.json"
    worst = np.argsort([-e for e in errs])[:5] if len(errs) else []
    res["worst_neurons_err_ms"] = [float(errs[j]) for j in worst]
    with open(os.path.join(a.out, name), "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
