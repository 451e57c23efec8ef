"""Forward vs reverse mode for fitting: ``python -m benchmarks.fit_mode [--repeats 3]``.

The measurement behind `hh_jax.fit.optimize`'s default gradient mode (`fit.default_mode`):
the time of one vmapped ``value_and_grad`` of the issue-5 trace objective (3 protocols × 100 ms
at dt 0.025 ms) for K starts and k fitted fields, by `ForwardMode()` (k JVPs, through the scan
loop's tangents) and `ReverseMode()` (the fused kernel's adjoint on the CPU; the scan loop's
transpose with ``backend=ScanLoop()`` and for the teacher-forced window), each compiled once,
median of `repeats`. Writes
``results/fit_mode.{json,md}``.
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
import hh_jax.fit as hf  # noqa: E402

from ._report import write_results  # noqa: E402

HERE = Path(__file__).resolve().parent
FIELDS = ("gNa", "gK", "gL", "ENa", "EK", "EL", "C")
TRUTH = hh_jax.HHParams.hh1952()


def median_time(f, arg, repeats):
    jax.block_until_ready(f(arg))
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(arg))
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fields", default="1,2,3,5,7")
    ap.add_argument("--starts", default="1,16")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    stim = hh_jax.Step(jnp.array([5.0, 10.0, 20.0]))
    V = hh_jax.simulate(TRUTH, stim, duration=100.0, dt=0.025).V
    rows = []
    full = hf.TraceObjective(stim, V, dt=0.025)
    objectives = (("fused kernel (default)", full),
                  ("scan loop", hf.TraceObjective(stim, V, dt=0.025, backend=hh_jax.ScanLoop())),
                  ("teacher-forced 0.5 ms (its own scan)", full.window(horizon=0.5)))
    for loop_name, obj in objectives:
        for k in [int(x) for x in args.fields.split(",")]:
            space = hf.ParamSpace(TRUTH, FIELDS[:k])
            for K in [int(x) for x in args.starts.split(",")]:
                U = space.sample(jax.random.key(0), K)
                row = dict(loop=loop_name, fields=k, starts=K, neurons=3 * K)
                for mode_name, mode in (("forward", hf.ForwardMode()), ("reverse", hf.ReverseMode())):
                    f = eqx.filter_jit(jax.vmap(hf.value_and_grad(obj, space, mode=mode)))
                    row[f"{mode_name}_s"] = median_time(f, U, args.repeats)
                row["faster"] = "forward" if row["forward_s"] < row["reverse_s"] else "reverse"
                rows.append(row)
                print(row, flush=True)
    result = dict(
        environment=dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), platform=platform.platform(),
                         cores=os.cpu_count(), load_avg=os.getloadavg(), backend=jax.default_backend(),
                         versions=dict(jax=jax.__version__, hh_jax=hh_jax.__version__)),
        workload="TraceObjective, 3 protocols (Step 5, 10, 20 uA/cm^2) x 100 ms, dt 0.025 ms, float64",
        repeats=args.repeats, rows=rows)
    lines = ["# Forward vs reverse mode for fitting", "",
             f"`python -m benchmarks.fit_mode {' '.join(argv if argv is not None else sys.argv[1:])}`; "
             f"{result['workload']}; median of {args.repeats}; load {os.getloadavg()[0]:.1f}; "
             f"{platform.platform()}.", "",
             "| loop | fields k | starts K (neurons) | forward mode s | reverse mode s | faster |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['loop']} | {r['fields']} | {r['starts']} ({r['neurons']}) | "
                     f"{r['forward_s']:.3f} | {r['reverse_s']:.3f} | {r['faster']} |")
    write_results(args.out, "fit_mode", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
