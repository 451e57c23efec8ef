"""Peak memory of `simulate` vs population size, steps and recording (XLA memory analysis).

The compiled program's argument + output + temporary bytes (exact, from
``jax.jit(...).lower(...).compile().memory_analysis()``) — the device memory a run needs.
Writes a markdown table to stdout. Usage: ``python -m benchmarks.memory_scaling``.
"""

import functools

import jax
import jax.numpy as jnp

import hh_jax

DT = 0.01


def measure(n, n_steps, record, record_every=1, max_spikes=0):
    f = functools.partial(
        hh_jax.simulate, hh_jax.HHParams(), duration=n_steps * DT, dt=DT, record=record,
        record_every=record_every, max_spikes=max_spikes,
    )
    m = jax.jit(f).lower(jnp.full((n,), 10.0)).compile().memory_analysis()
    return m.argument_size_in_bytes, m.output_size_in_bytes, m.temp_size_in_bytes


def main():
    jax.config.update("jax_enable_x64", True)
    rows = [
        (10**4, 10**3, (), 1, 0), (10**4, 10**4, (), 1, 0), (10**4, 10**5, (), 1, 0),
        (10**4, 10**3, ("V",), 1, 0), (10**4, 10**4, ("V",), 1, 0),
        (10**4, 10**4, ("V",), 10, 0), (10**4, 10**5, ("V",), 100, 0),
        (10**4, 10**4, ("V", "m", "h", "n"), 10, 0), (10**4, 10**4, (), 1, 50),
        (10**6, 100, (), 1, 0),
    ]
    print(f"float64, CPU, jax {jax.__version__}\n")
    print("| neurons | steps | record | record_every | max_spikes | samples | args MB | outputs MB | temporaries MB | total MB |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n, steps, rec, every, ms in rows:
        a, o, t = measure(n, steps, rec, every, ms)
        samples = steps // every + 1 if rec else 0
        print(f"| {n:,} | {steps:,} | {','.join(rec) or '()'} | {every} | {ms} | {samples:,} | "
              f"{a / 1e6:.2f} | {o / 1e6:.2f} | {t / 1e6:.2f} | {(a + o + t) / 1e6:.2f} |")


if __name__ == "__main__":
    main()
