"""Spike-time accuracy of every scan stepper against a float64 SciPy reference.

For both presets and I = 5, 10, 20 µA/cm² over 200 ms (initial state: gates at steady state at
−65 mV), the max absolute spike-time error over all spikes and all six cases, for
dt ∈ {0.1, 0.05, 0.025, 0.01} ms. A missing or extra spike is reported as such.

Run: ``python -m benchmarks.accuracy`` → ``benchmarks/results/accuracy.{json,md}``.
"""

import json
import os
import sys

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import hh_jax  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from helpers import reference_spikes  # noqa: E402  (the tests' independent NumPy/SciPy model)

DTS = (0.1, 0.05, 0.025, 0.01)
CASES = [(p, I) for p in ("brainpy", "hh1952") for I in (5.0, 10.0, 20.0)]


def steppers():
    out = {}
    for name, cls in hh_jax.STEPPERS.items():
        out[name] = cls()
        if cls is hh_jax.ExpEuler:
            out["exp_euler (simultaneous, BrainPy/Brian2)"] = hh_jax.ExpEuler(staggered=False)
    return out


def measure():
    rows = {}
    for name, stepper in steppers().items():
        rows[name] = {}
        for dt in DTS:
            worst, problems = 0.0, []
            for preset, I in CASES:
                ref = reference_spikes(preset, I)
                r = hh_jax.simulate(hh_jax.HHParams.from_preset(preset), I, duration=200.0, dt=dt,
                                    stepper=stepper, record=(), throw=False)
                got = np.asarray(r.spike_times)[: int(r.spike_count)]
                if not bool(r.finite):
                    problems.append(f"{preset} I={I:g}: diverged")
                elif len(got) != len(ref):
                    problems.append(f"{preset} I={I:g}: {len(got)} vs {len(ref)} spikes")
                else:
                    worst = max(worst, float(np.max(np.abs(got - ref))))
            rows[name][str(dt)] = {"max_error_ms": worst, "problems": problems}
    return rows


def markdown(rows) -> str:
    head = "| stepper | " + " | ".join(f"dt = {dt} ms" for dt in DTS) + " |\n"
    head += "|---|" + "---|" * len(DTS) + "\n"
    for name, cols in rows.items():
        cells = []
        for dt in DTS:
            c = cols[str(dt)]
            cells.append(f"{c['max_error_ms']:.2g} ms" if not c["problems"] else f"✘ in {len(c['problems'])}/6 cases the spike count differs or the run diverges")
        head += f"| {name} | " + " | ".join(cells) + " |\n"
    return head


def main():
    rows = measure()
    out = os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(out, exist_ok=True)
    meta = {"jax": jax.__version__, "hh_jax": hh_jax.__version__, "cases": CASES, "duration_ms": 200.0}
    with open(os.path.join(out, "accuracy.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    md = markdown(rows)
    with open(os.path.join(out, "accuracy.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
