"""What XLA makes of the hot loop: ``python -m benchmarks.profile_hlo [--sizes 1,10000,100000]``.

For the benchmark workload (`simulate(..., record=(), max_spikes=0)`, f32, 10⁴ steps of 0.01 ms)
and for the 40-line `lax.scan` baseline, compiles the program and reports, from the optimised HLO
(``jax.jit(f).lower(...).compile().as_text()``), per time step:

- ``kernels``: loop fusions in the while body (each one pass over the population);
- ``threaded``: how many of them XLA's CPU backend splits over its intra-op threads
  (``outer_dimension_partitions``) — the only way one XLA CPU program uses more than one core;
- ``conds`` / ``scatters``: spike-time work in the body (Hermite `lax.cond`, the spike-time
  buffer update), also for the default ``max_spikes`` and ``spike_interpolation=hh_jax.HermiteSpikes()``;

and the throughput of each (best of `repeats`, neuron-steps per second, with CPU/wall). Writes
``results/profile_hlo.json``. Findings are discussed in ``docs/performance.md``.
"""

import argparse
import json
import os
import re
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import hh_jax

from ._baseline import make_baseline

STEPS, DT, CURRENT = 10_000, 0.01, 10.0


def _while_body(txt: str) -> str:
    """Text of the while body computation of the (single) time loop."""
    m = re.search(r"body=(%[\w.\-]+)", txt)
    if m is None:
        return ""
    start = txt.index("\n" + m.group(1) + " ")
    return txt[start:txt.index("\n}", start)]


def hlo_stats(compiled) -> dict:
    body = _while_body(compiled.as_text())
    lines = [ln for ln in body.splitlines() if " fusion(" in ln]
    return dict(kernels=len(lines), threaded=sum("outer_dimension_partitions" in ln for ln in lines),
                conds=body.count(" conditional("), scatters=body.count("scatter"))


def _best(fn, repeats):
    jax.block_until_ready(fn())
    best = None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        w = time.perf_counter() - t
        if best is None or w < best[0]:
            best = (w, (time.process_time() - c) / w)
    return best


def profile(n: int, repeats: int) -> list[dict]:
    p = hh_jax.HHParams()
    y0 = hh_jax.steady_state_at(jnp.asarray(-65.0, p.dtype), shape=n)
    kw = dict(duration=STEPS * DT, dt=DT, record=())
    variants = {
        "simulate (max_spikes=0)": dict(max_spikes=0),
        "simulate (default max_spikes, hermite)": dict(),
        "simulate (default max_spikes, linear)": dict(spike_interpolation=hh_jax.LinearSpikes()),
    }
    rows = []
    for name, extra in variants.items():
        # spike_times is returned too: otherwise XLA drops the spike-time work as dead code.
        f = jax.jit(lambda p, y0, extra=extra: (lambda r: (r.spike_count, r.spike_times))(
            hh_jax.simulate(p, CURRENT, y0=y0, **kw, **extra)))
        c = f.lower(p, y0).compile()
        w, cw = _best(lambda: c(p, y0), repeats)
        rows.append(dict(impl=name, n=n, **hlo_stats(c), neuron_steps_per_s=n * STEPS / w, cpu_wall=cw))
    b = make_baseline(STEPS, DT)
    args = [y0.V, y0.m, y0.h, y0.n, jnp.full(n, CURRENT, jnp.float32)]
    c = b.lower(*args).compile()
    w, cw = _best(lambda: c(*args), repeats)
    rows.append(dict(impl="plain lax.scan (40 lines)", n=n, **hlo_stats(c), neuron_steps_per_s=n * STEPS / w,
                     cpu_wall=cw))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10000,100000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).with_name("results")))
    args = ap.parse_args(argv)
    rows = []
    for n in (int(float(s)) for s in args.sizes.split(",")):
        for r in profile(n, args.repeats):
            rows.append(r)
            print(f"N={r['n']:>7} {r['impl']:40s} kernels {r['kernels']:2d} threaded {r['threaded']:2d} "
                  f"conds {r['conds']} scatters {r['scatters']}  {r['neuron_steps_per_s'] / 1e6:7.1f} M/s "
                  f"(CPU/wall {r['cpu_wall']:.2f})", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile_hlo.json").write_text(json.dumps(dict(load_average=os.getloadavg(), rows=rows), indent=1))


if __name__ == "__main__":
    main()
