"""Peak resident memory of one 10⁵-step gradient, with and without the checkpointed scan.

Run: ``PYTHONPATH=. python benchmarks/fit_memory_rss.py`` — each case runs in a fresh
subprocess measured by ``/usr/bin/time -v`` (maximum resident set size, includes JAX itself).
"""

import json
import os
import re
import subprocess
import sys

CHILD = """
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
import hh_jax, hh_jax.fit as hf
T = hh_jax.HHParams.hh1952(); n = {n}; dt = 0.025
obj = hf.TraceObjective(hh_jax.Constant(10.0), jnp.full((n + 1,), -65.0), dt=dt,
                        backend=hh_jax.FusedCPU(hh_jax.ScanLoop(checkpoint={ck})))
space = hf.ParamSpace(T, ("gNa", "gK"))
g = jax.jit(jax.grad(lambda u: obj(space.to_params(u))))(space.to_unconstrained(T))
print(jax.block_until_ready(g))
"""


def main():
    out = {}
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    for n in (0, 100_000):
        for ck in (False, True):
            code = CHILD.format(n=max(n, 10), ck=ck)
            p = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code], env=env,
                               capture_output=True, text=True, check=True)
            kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
            out[f"{n}_steps_checkpoint_{ck}"] = kb / 1024
            print(n, ck, f"{kb / 1024:.0f} MB", flush=True)
    path = os.path.join(os.path.dirname(__file__), "results", "fit_memory_rss.json")
    with open(path, "w") as f:
        json.dump({"peak_rss_MB": out, "note": "10-step runs give the baseline (JAX + compile)"}, f, indent=2)


if __name__ == "__main__":
    main()
