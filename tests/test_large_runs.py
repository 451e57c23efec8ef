"""Large and long runs: a 10⁶-neuron population, and peak memory that scales with the samples
kept, not the steps taken (XLA's compiled memory analysis, so the numbers are exact and cheap).

Chunked long runs (constant memory beyond one scan) live on another branch; see
docs/robustness.md.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

import hh_jax

DT = 0.01


def _compiled(n, n_steps, record, record_every=1, max_spikes=0):
    f = functools.partial(
        hh_jax.simulate, hh_jax.HHParams(), duration=n_steps * DT, dt=DT, record=record,
        record_every=record_every, max_spikes=max_spikes,
    )
    I = jnp.full((n,), 10.0)
    return jax.jit(f).lower(I).compile(), I


def _bytes(compiled):
    m = compiled.memory_analysis()
    return m.temp_size_in_bytes + m.output_size_in_bytes + m.argument_size_in_bytes


def test_a_million_neurons_run_within_memory():
    n = 10**6
    compiled, I = _compiled(n, 20, record=())
    state_bytes = 4 * n * 8  # V, m, h, n in float64
    # The whole program (inputs, outputs, scan carry and temporaries) is a few copies of the
    # state: ~0.5 GB for 10⁶ neurons, independent of the number of steps.
    assert _bytes(compiled) < 16 * state_bytes, _bytes(compiled) / 1e6
    r = compiled(I)
    assert r.final_state.V.shape == (n,) and r.spike_count.shape == (n,)
    assert bool(r.finite) and r.V is None and r.t.shape == (0,)
    # every neuron is identical here: all equal the single-neuron run
    one = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=20 * DT, dt=DT, record=(), max_spikes=0)
    np.testing.assert_array_equal(np.asarray(r.final_state.V[:: n // 7]), float(one.final_state.V))


def test_peak_memory_scales_with_samples_kept_not_steps_taken():
    n = 1000
    none_1, _ = _compiled(n, 1000, record=())
    none_10, _ = _compiled(n, 10000, record=())
    assert _bytes(none_10) == _bytes(none_1)  # flat as the steps grow 10x
    dec_1, _ = _compiled(n, 1000, record=("V",), record_every=10)
    dec_10, _ = _compiled(n, 10000, record=("V",), record_every=100)
    assert _bytes(dec_10) == _bytes(dec_1)  # same samples kept: same memory
    full_10, _ = _compiled(n, 10000, record=("V",), record_every=1)
    trace = 10001 * n * 8
    assert trace <= _bytes(full_10) - _bytes(none_10) < 2.2 * trace  # the trace, ~once
