"""Same-run speed of the fused kernel: a baseline revision against the working tree.

``python -m benchmarks.kernel_speed [--baseline REV] [--sizes 1,1000,10000,100000] [--rounds 5]``

The baseline (default ``0a8bce3``, main before issue 13) is exported with ``git archive`` into a
temporary folder (reused while it exists). Two long-lived worker processes
(``_kernel_speed_worker.py``), one with ``PYTHONPATH`` = the baseline tree and one with the
working tree, each with its own ``HH_JAX_CACHE_DIR``, compile every configuration once, then time
it *interleaved* — A B, then B A, round after round — so that both see the same machine load.
Reported per configuration (also the CPU/wall time ratio of each side): the median over rounds × repeats of neuron-steps per second and
the ratio new / baseline: the median of the per-round ratios (each round's two medians, measured
back to back), with its range over rounds. Also the first call (trace +
compile + run of the default ``simulate`` at N = 1, after JAX's start-up; kernel already built)
in fresh processes, alternating A, B.

Workload: ``simulate(HHParams(), 10.0, dt=0.025, record=(), max_spikes=0, y0=steady state at
−65 mV)`` through ``jax.jit``, steps chosen so that one call is ~``--work`` neuron-steps.
Writes ``results/kernel_speed.json`` and ``results/kernel_speed.md``.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._report import write_results

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
RESULTS = HERE / "results"
WORKER = HERE / "_kernel_speed_worker.py"


def _git(*args):
    return subprocess.run(["git", "-C", str(TREE), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def baseline_tree(rev: str) -> Path:
    """The source tree of `rev`, exported once into the temporary folder."""
    sha = _git("rev-parse", "--verify", rev + "^{commit}")
    dest = Path(tempfile.gettempdir()) / f"hh_jax_kernel_speed_{sha[:12]}"
    if not (dest / ".complete").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(TREE), "archive", sha], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        (dest / ".complete").write_text(sha)
    return dest


class Worker:
    def __init__(self, tree: Path, cache: Path):
        self.env = dict(os.environ, PYTHONPATH=str(tree), HH_JAX_CACHE_DIR=str(cache))
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=self.env)

    def ask(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.env['PYTHONPATH']} died")
        return json.loads(line)

    def first_call(self):
        out = subprocess.run([sys.executable, str(WORKER), "--first-call"], env=self.env,
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])["first_call_s"]

    def close(self):
        try:
            self.ask(op="quit")
        except Exception:
            pass
        self.proc.wait(timeout=30)


def _steps(n, work, min_steps, max_steps):
    return int(min(max_steps, max(min_steps, work // n)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="0a8bce3", help="git revision to compare against")
    ap.add_argument("--sizes", default="1,1000,10000,100000", help="float32 population sizes")
    ap.add_argument("--f64-sizes", default="1,1000", help="float64 population sizes ('' for none)")
    ap.add_argument("--work", type=float, default=1e7, help="neuron-steps per timed call")
    ap.add_argument("--max-steps", type=int, default=200_000, help="steps per call at most (N = 1)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved A/B rounds")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per worker and round")
    ap.add_argument("--first-calls", type=int, default=3, help="fresh processes per tree")
    ap.add_argument("--max-spikes", type=int, default=0)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "hh_jax_kernel_speed_cache"),
                    help="parent of the two HH_JAX_CACHE_DIRs")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    configs = [(int(float(n)), "float32") for n in args.sizes.split(",") if n]
    configs += [(int(float(n)), "float64") for n in args.f64_sizes.split(",") if n]
    base = baseline_tree(args.baseline)
    cache = Path(args.cache)
    head = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    names = {"A": f"baseline {args.baseline}", "B": f"working tree ({head}{', modified' if dirty else ''})"}
    workers = {"A": Worker(base, cache / "baseline"), "B": Worker(TREE, cache / "new")}
    try:
        info = {k: w.ask(op="info") for k, w in workers.items()}
        times = {(n, d, k): [] for n, d in configs for k in workers}
        cpu_wall = {(n, d, k): [] for n, d in configs for k in workers}
        ratios = {(n, d): [] for n, d in configs}
        steps = {(n, d): _steps(n, args.work, 100, args.max_steps) for n, d in configs}
        for n, d in configs:  # compile everything first
            for w in workers.values():
                w.ask(op="time", n=n, dtype=d, steps=steps[n, d], repeats=1, max_spikes=args.max_spikes)
        for r in range(args.rounds):
            order = "AB" if r % 2 == 0 else "BA"
            for n, d in configs:
                med = {}
                for k in order:
                    res = workers[k].ask(op="time", n=n, dtype=d, steps=steps[n, d], repeats=args.repeats,
                                         max_spikes=args.max_spikes)
                    ts = res["times_s"]
                    times[n, d, k] += ts
                    cpu_wall[n, d, k] += [c / w for c, w in zip(res["cpu_s"], ts)]
                    med[k] = statistics.median(ts)
                ratios[n, d].append(med["A"] / med["B"])
            print(f"round {r + 1}/{args.rounds} done ({time.perf_counter() - t_start:.0f} s)", flush=True)
        first = {k: [] for k in workers}
        for _ in range(args.first_calls):
            for k, w in workers.items():
                first[k].append(w.first_call())
    finally:
        for w in workers.values():
            w.close()
    rows = []
    for n, d in configs:
        s = steps[n, d]
        rate = {k: n * s / statistics.median(times[n, d, k]) for k in workers}
        rows.append(dict(n=n, dtype=d, steps=s, dt_ms=0.025,
                         baseline_neuron_steps_per_s=rate["A"], new_neuron_steps_per_s=rate["B"],
                         ratio=statistics.median(ratios[n, d]), ratio_of_medians=rate["B"] / rate["A"],
                         ratio_per_round=ratios[n, d],
                         baseline_cpu_wall=statistics.median(cpu_wall[n, d, "A"]),
                         new_cpu_wall=statistics.median(cpu_wall[n, d, "B"]),
                         baseline_times_s=times[n, d, "A"], new_times_s=times[n, d, "B"]))
    result = dict(
        environment=dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), platform=platform.platform(),
                         cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                         affinity=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                         load_avg=os.getloadavg(), workers={names[k]: v for k, v in info.items()}),
        baseline=args.baseline, new=names["B"], rounds=args.rounds, repeats=args.repeats,
        max_spikes=args.max_spikes, rows=rows,
        first_call=dict(baseline_s=first["A"], new_s=first["B"],
                        baseline_median_s=statistics.median(first["A"]) if first["A"] else None,
                        new_median_s=statistics.median(first["B"]) if first["B"] else None),
        wall_s=time.perf_counter() - t_start)
    cmd = "python -m benchmarks.kernel_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results(args.out, "kernel_speed", result, markdown(result, cmd))


TARGETS = ((1000, "float32", 1.6), (10_000, "float32", 0.95), (100_000, "float32", 0.95), (1, "float32", 1.2))
"""(N, dtype, least new / baseline ratio): the kernel targets of issue 13, item 11."""


def targets(result):
    """(criterion, measured, holds) for each target of `TARGETS` that was measured, and the first call."""
    out = []
    for n, d, need in TARGETS:
        for r in result["rows"]:
            if r["n"] == n and r["dtype"] == d:
                out.append((f"N = {n} {d}: new / baseline ≥ {need}", f"{r['ratio']:.2f}×", r["ratio"] >= need))
    fc = result["first_call"]["new_median_s"]
    if fc is not None:
        out.append(("first call ≤ 0.5 s", f"{fc:.2f} s", fc <= 0.5))
    return out


def markdown(result, command):
    env = result["environment"]
    w = next(iter(env["workers"].values()))
    lines = [f"Command: `{command}`  ",
             f"Date: {env['date']}; {env['cores']} cores ({env['cpu']}, {env['affinity']} usable, load "
             f"{', '.join(f'{x:.1f}' for x in env['load_avg'])} at the end), {env['platform']}; "
             f"backend {w['backend']} ({', '.join(w['devices'])}); jax {w['versions']['jax']}, "
             f"jaxlib {w['versions']['jaxlib']}, equinox {w['versions']['equinox']}; kernel threads "
             f"{w['threads']}.", "",
             f"Fused kernel, `simulate(HHParams(), 10.0, dt=0.025, record=(), max_spikes="
             f"{result['max_spikes']})` under `jax.jit`; baseline {result['baseline']} vs "
             f"{result['new']}, interleaved, {result['rounds']} rounds × {result['repeats']} calls "
             f"each; median neuron-steps per second. new / baseline: the median of the per-round (paired) "
             f"ratios, with their range. CPU/wall: process CPU time over wall time (cores used; "
             f"less than the kernel's threads where the machine is busy).", "",
             "| N | dtype | steps | baseline | new | new / baseline | range over rounds | CPU/wall baseline, new |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lo, hi = min(r["ratio_per_round"]), max(r["ratio_per_round"])
        lines.append(f"| {r['n']} | {r['dtype']} | {r['steps']} | {r['baseline_neuron_steps_per_s'] / 1e6:.1f} M "
                     f"| {r['new_neuron_steps_per_s'] / 1e6:.1f} M | {r['ratio']:.2f}× | {lo:.2f}–{hi:.2f} "
                     f"| {r['baseline_cpu_wall']:.2f}, {r['new_cpu_wall']:.2f} |")
    fc = result["first_call"]
    if fc["baseline_s"]:
        lines += ["", f"First call of the default `simulate` (N = 1, 10⁴ steps, record V; fresh process, "
                  f"after JAX's start-up, kernel already built): baseline median {fc['baseline_median_s']:.2f} s "
                  f"{[round(t, 2) for t in fc['baseline_s']]}, new median {fc['new_median_s']:.2f} s "
                  f"{[round(t, 2) for t in fc['new_s']]}."]
    lines += ["", "| issue 13 item 11 target | measured | holds |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {'yes' if c else 'NO'} |" for a, b, c in targets(result)]
    lines += ["", f"Total benchmark wall time {result['wall_s']:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
