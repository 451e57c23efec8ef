"""Time-invariance is a property of the stimulus (`AbstractStimulus.time_invariant`), never
inferred from a table's shape.

The fused kernel tabulates the current at the step midpoints and (Hermite spike times) at the
step ends. It once built these tables "as for a constant" whenever they had one row, so a run
of one step with a time-varying stimulus located its spikes as if the current at the end of the
step were the current at its start. And a sum or scaling of constants, being no `Constant`,
was tabulated once per step (memory, and a fallback to the `lax.scan` loop for large runs).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import HHParams
from hh_jax._fused import kernel_path, unavailable_reason

FUSED, SCAN = hh_jax.FusedCPU(), hh_jax.ScanLoop()
needs_kernel = pytest.mark.skipif(kernel_path() is None, reason="no C++ compiler: no fused kernel")

# Just below threshold (V_th = 20 mV), with a current rising steeply within the first step: the
# crossing time depends on the current at the step's end (dV/dt there).
Y0 = hh_jax.HHState(V=jnp.asarray(-30.0), m=jnp.asarray(0.5), h=jnp.asarray(0.5), n=jnp.asarray(0.35))
VARYING = {
    "ramp": lambda: hh_jax.Ramp(0.0, 2000.0, t_start=0.0, t_end=1.0),
    "sine": lambda: hh_jax.Sine(1500.0, frequency=2000.0, offset=200.0),
    "ramp per neuron + constant": lambda: hh_jax.Ramp(0.0, jnp.array([1500.0, 2000.0, 2500.0]),
                                                      t_start=0.0, t_end=1.0) + 20.0,
}


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-9)


def test_time_invariant_property_of_every_stimulus_class():
    c = hh_jax.Constant(3.0)
    ramp = VARYING["ramp"]()
    invariant = [c, c + c, c + 2.0, 2.0 * c, -c, c - c, hh_jax.Stack([c, hh_jax.Constant(1.0)]),
                 hh_jax.Sum([c, 3.0 * (c + 1.0)])]
    varying = [
        ramp, ramp + c, c + ramp, 0.0 * ramp, hh_jax.Stack([c, ramp]),
        hh_jax.Step(1.0, onset=0.0), hh_jax.Sections([1.0, 2.0], [1.0, 1.0]),
        hh_jax.PulseTrain([1.0], widths=1.0, amplitudes=1.0), hh_jax.Sine(1.0, frequency=10.0),
        hh_jax.Square(1.0, frequency=10.0), hh_jax.Sampled(jnp.ones(1), dt=0.1),
        hh_jax.WhiteNoise(jax.random.key(0), sigma=1.0, dt=0.1),
        hh_jax.OUNoise(jax.random.key(0), mean=1.0, sigma=1.0, tau=1.0, dt=0.1, duration=1.0),
    ]
    for s in invariant:
        assert s.time_invariant is True, s
    for s in varying:  # includes a one-sample Sampled: 0 outside its grid, so not constant
        assert s.time_invariant is False, s
    # simulate_chunked's time shift keeps it (a constant's chunks are tabulated once)
    from hh_jax._chunked import _Shifted

    assert _Shifted(c + 1.0, jnp.asarray(5.0)).time_invariant is True
    assert _Shifted(ramp, jnp.asarray(5.0)).time_invariant is False

    class Custom(hh_jax.AbstractStimulus):  # a user's stimulus: varying unless it says otherwise
        def __call__(self, t):
            return 1.0 + 0.0 * t

        def jump_times(self, t0, t1):
            return np.zeros((0,))

    assert Custom().time_invariant is False


@needs_kernel
@pytest.mark.parametrize("interp", [hh_jax.HermiteSpikes(), hh_jax.LinearSpikes()], ids=repr)
@pytest.mark.parametrize("name", list(VARYING))
@pytest.mark.parametrize("n_steps", [1, 2])
def test_short_runs_with_a_varying_stimulus_locate_spikes_as_the_scan_loop(name, n_steps, interp):
    stim = VARYING[name]()
    kw = dict(duration=n_steps * 0.1, dt=0.1, y0=Y0, record=("V", "I"), max_spikes=2,
              spike_interpolation=interp)
    f = hh_jax.simulate(HHParams(), stim, backend=FUSED, **kw)
    s = hh_jax.simulate(HHParams(), stim, backend=SCAN, **kw)
    assert np.all(np.asarray(f.spike_count) >= 1)  # every neuron crosses in the first step
    np.testing.assert_array_equal(np.asarray(f.spike_count), np.asarray(s.spike_count))
    _close(f.spike_times, s.spike_times)
    _close(f.V, s.V)
    _close(f.I, s.I)


@needs_kernel
def test_one_step_per_call_loop_equals_one_scan_run():
    # closed-loop use: advance one step per call, feeding the final state back
    stim, dt = VARYING["sine"](), 0.05
    y, t, times = Y0, 0.0, []
    for _ in range(3):
        r = hh_jax.simulate(HHParams(), stim, duration=dt, dt=dt, y0=y, t0=t, record=(), backend=FUSED)
        times += [float(x) for x in np.asarray(r.spike_times).ravel() if np.isfinite(x)]
        y, t = r.final_state, t + dt
    whole = hh_jax.simulate(HHParams(), stim, duration=3 * dt, dt=dt, y0=Y0, record=(), backend=SCAN)
    expected = [float(x) for x in np.asarray(whole.spike_times).ravel() if np.isfinite(x)]
    assert len(expected) == 1
    _close(times, expected)
    for v in "Vmhn":
        _close(getattr(y, v), getattr(whole.final_state, v))


@needs_kernel
def test_one_step_chunks_equal_one_scan_run(tmp_path):
    stim, dt = VARYING["ramp"](), 0.05
    c = hh_jax.simulate_chunked(HHParams(), stim, duration=4 * dt, dt=dt, y0=Y0, out=tmp_path / "c",
                                chunk_steps=1, record_every=1, progress=False, max_spikes=2)
    whole = hh_jax.simulate(HHParams(), stim, duration=4 * dt, dt=dt, y0=Y0, record=(), backend=SCAN)
    spikes = c.spike_table()
    assert spikes.shape[0] == 1
    _close(spikes[:, 1], np.asarray(whole.spike_times)[:1])


@needs_kernel
def test_a_sum_of_constants_is_tabulated_once(monkeypatch):
    from hh_jax import _fused

    # a table of more than 1000 elements makes the kernel fall back; the run has 2000 steps
    monkeypatch.setattr(_fused, "MAX_TABLE", 1000)
    amps = jnp.linspace(5.0, 15.0, 4)
    stim = hh_jax.Constant(amps) + 2.0 * hh_jax.Constant(1.5) - hh_jax.Constant(0.5)
    assert stim.time_invariant
    grid = ((4,), 2000)  # population shape, steps
    assert unavailable_reason(stim, *grid, jnp.float64) is None
    assert _fused._table_shape(stim, *grid, jnp.float64) == (1, 4)
    # a varying stimulus of the same shape does fall back
    assert "exceeds" in unavailable_reason(stim + hh_jax.Step(1.0, onset=1.0), *grid, jnp.float64)
    kw = dict(duration=20.0, dt=0.01, record=("V", "I"), record_every=10)
    f = hh_jax.simulate(HHParams(), stim, backend=FUSED, **kw)  # raises if it cannot run fused
    s = hh_jax.simulate(HHParams(), stim, backend=SCAN, **kw)
    assert np.all(np.asarray(f.spike_count) > 0)
    np.testing.assert_array_equal(np.asarray(f.spike_count), np.asarray(s.spike_count))
    _close(f.spike_times, s.spike_times)
    _close(f.V, s.V)
    _close(f.I, s.I)


def test_no_dispatch_on_the_constant_class():
    """Time-invariance is the stimulus' own property (`AbstractStimulus.time_invariant`, False by
    default: a safe answer for any stimulus), never `isinstance(..., Constant)` (issue 13 item 5)."""
    import pathlib
    import re

    root = pathlib.Path(hh_jax.__file__).parent
    bad = [f"{p.relative_to(root)}: {line.strip()}" for p in root.rglob("*.py")
           for line in p.read_text().splitlines() if re.search(r"isinstance\([^)]*\bConstant\b", line)]
    assert not bad, bad
