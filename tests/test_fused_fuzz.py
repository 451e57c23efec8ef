"""Differential fuzz: the fused CPU kernel against the `lax.scan` loop, in float64, to 1e-9.

Every `simulate` feature the kernel implements is drawn at random against the same run through
``backend=hh_jax.ScanLoop()``: the voltage and other traces, spike times and spike counts must agree
(counts exactly, the rest to 1e-9). Populations of 1, 127, 128 and 129 neurons (the kernel's
tiles are 128 neurons; fewer than 8 run its scalar code) and multi-dimensional ones; every
stimulus class, sums, scalings and stacks of them, per neuron or population-wide; 1, 2, 3 and
many steps; initial voltages far beyond the rates' exponent clip; records on and off, `record_every`, `max_spikes` (none, few: the buffer overflows,
the default), both spike interpolations, the staggered and the simultaneous scheme, nonzero
`t0`; random parameters and initial states per neuron.

Cost. A new *structure* (population shape, step count, record, stimulus class and its static
timings, ...) compiles both implementations (seconds); new *values* (parameters, initial
states, amplitudes, frequencies, pulse times, samples, noise keys) reuse the compilation
(milliseconds). So the structures are a fixed list of scenarios, each compiled once, and
hypothesis draws the values: a seed for the per-neuron arrays plus the current's scale. The
examples are derandomized (no database), so a CI run is reproducible; the ``nightly`` profile
(conftest.py) runs more of them.
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hh_jax
from hh_jax import HHParams
from hh_jax._fused import kernel_path

pytestmark = pytest.mark.skipif(kernel_path() is None, reason="no C++ compiler: no fused kernel")

RTOL = ATOL = 1e-9


def _amp(rng, shape, scale):
    """Per-neuron currents (µA/cm²) in [−scale/4, scale]."""
    return jnp.asarray(rng.uniform(-0.25 * scale, scale, shape))


# Stimulus builders: (rng, population shape, scale µA/cm², t0 ms, dt ms, n_steps) -> stimulus.
# Static fields (onsets, edges, grids) are fixed per scenario; array fields are drawn. No jump
# of a discontinuous stimulus falls on a step's midpoint or end, where the current is evaluated:
# there the two implementations' time grids (equal to rounding) could pick different sides.
def _constants(rng, shape, scale, t0, dt, n):
    # a sum and scaling of constants: time-invariant, tabulated once
    return hh_jax.Constant(_amp(rng, shape, scale)) + 0.5 * hh_jax.Constant(rng.uniform(0, scale)) - 1.0


def _ramp(rng, shape, scale, t0, dt, n):
    return hh_jax.Ramp(_amp(rng, shape, scale), rng.uniform(0, 20 * scale), t_start=t0 - 0.3 * dt,
                       t_end=t0 + (1.1 * n + 0.03) * dt)


def _sine_plus_constant(rng, shape, scale, t0, dt, n):
    freq = jnp.asarray(rng.uniform(10.0, 2000.0, shape))
    return hh_jax.Sine(_amp(rng, shape, 4 * scale), frequency=freq, phase=rng.uniform(0, 6.3),
                       offset=rng.uniform(0, scale)) + hh_jax.Constant(rng.uniform(-2, 2))


def _step_and_pulses(rng, shape, scale, t0, dt, n):
    times = jnp.asarray(np.sort(rng.uniform(t0, t0 + n * dt, 3)))
    pulses = hh_jax.PulseTrain(times, widths=jnp.asarray(rng.uniform(0.3, 2.0, 3)) * dt,
                               amplitudes=jnp.asarray(rng.uniform(0, 4 * scale, (3,) + shape)))
    return hh_jax.Step(_amp(rng, shape, scale), onset=t0 + 0.37 * dt, offset=t0 + (0.6 * n + 0.01) * dt) + pulses


def _square_sections(rng, shape, scale, t0, dt, n):
    square = hh_jax.Square(_amp(rng, shape, 2 * scale), frequency=1000.0 / (7.3 * dt), duty=0.3,
                           offset=rng.uniform(-1, 1), t_start=t0 + 0.25 * dt)  # jumps at t0 + (0.25|2.44 + 7.3 j) dt
    d = n * dt / 3
    sections = hh_jax.Sections(jnp.asarray(rng.uniform(0, scale, (3,) + shape)), [d, d, d], t0=t0 - 0.21 * dt)
    return square - 0.5 * sections


def _sampled_hold(rng, shape, scale, t0, dt, n):
    return hh_jax.Sampled(jnp.asarray(rng.uniform(-0.2 * scale, 2 * scale, (n,) + shape)), dt=dt, t0=t0)


def _sampled_linear_and_white_noise(rng, shape, scale, t0, dt, n):
    lin = hh_jax.Sampled(jnp.asarray(rng.uniform(0, 2 * scale, (n + 1,) + shape)), dt=dt, t0=t0,
                         interpolation=hh_jax.LinearSamples())
    noise = hh_jax.WhiteNoise(jax.random.key(int(rng.integers(2**31))), sigma=jnp.asarray(rng.uniform(0, scale)),
                              dt=dt, shape=shape, mean=jnp.asarray(rng.uniform(0, 1)), t0=t0)
    return lin + noise


def _ou_noise(rng, shape, scale, t0, dt, n):
    return hh_jax.OUNoise(jax.random.key(int(rng.integers(2**31))), mean=rng.uniform(0, scale),
                          sigma=rng.uniform(0, scale), tau=2.0, dt=dt, duration=n * dt, shape=shape, t0=t0)


def _stack(rng, shape, scale, t0, dt, n):
    # the last population axis: one stimulus per column, broadcast over the leading axes
    parts = [hh_jax.Constant(rng.uniform(0, scale)),
             hh_jax.Ramp(0.0, rng.uniform(0, 10 * scale), t_start=t0 - 0.3 * dt, t_end=t0 + (n - 0.3) * dt),
             hh_jax.Sine(rng.uniform(0, 2 * scale), frequency=rng.uniform(50, 500), offset=rng.uniform(0, scale))]
    return hh_jax.Stack([parts[i % 3] for i in range(shape[-1])])


@dataclasses.dataclass(frozen=True)
class Scenario:
    shape: tuple[int, ...]
    n_steps: int
    stimulus: Callable
    dt: float = 0.025
    record: tuple[str, ...] = ("V",)
    record_every: int = 1
    max_spikes: int | None = 3
    interp: hh_jax.AbstractSpikeInterpolation = hh_jax.HermiteSpikes()
    staggered: bool = True
    t0: float = 0.0
    v0: tuple[float, float] = (-85.0, 45.0)  # range of the initial voltages, mV


SCENARIOS = {
    "1 neuron, 1 step, ramp": Scenario((), 1, _ramp, dt=0.1, record=("V", "m", "h", "n", "I")),
    "1 neuron, 2 steps, sine, linear": Scenario((1,), 2, _sine_plus_constant, dt=0.1, interp=hh_jax.LinearSpikes(),
                                                staggered=False, t0=-2.5),
    "127, 3 steps, steps and pulses": Scenario((127,), 3, _step_and_pulses, dt=0.05, record=("V", "I"),
                                               record_every=2, t0=4.0),
    "128, 2 steps, constants, counts only": Scenario((128,), 2, _constants, record=(), max_spikes=0),
    "129, many steps, square - sections": Scenario((129,), 400, _square_sections, dt=0.05, record=("V", "INa", "gK"),
                                                   record_every=7, max_spikes=2, t0=1.25),
    "(2,3), 3 steps, stack": Scenario((2, 3), 3, _stack, dt=0.1, record=("V", "n"), staggered=False),
    "(3,43), many steps, sampled hold": Scenario((3, 43), 160, _sampled_hold, record=(), max_spikes=None,
                                                 interp=hh_jax.LinearSpikes(), t0=10.0),
    "(4,), many steps, linear samples + white noise": Scenario((4,), 120, _sampled_linear_and_white_noise, dt=0.05,
                                                               record=("V", "I"), record_every=5, t0=-1.0),
    "(5,2), many steps, OU noise": Scenario((5, 2), 100, _ou_noise, record=("V",), record_every=3,
                                            staggered=False, max_spikes=1),
    "(129,), 1 step, constants": Scenario((129,), 1, _constants, dt=0.1, record=("V", "I")),
    # beyond the rate exponents' clip (|u| > 80: V outside [-840, 760] mV)
    "(9,), 2 steps, extreme voltages": Scenario((9,), 2, _sine_plus_constant, dt=0.01, record=("V", "m", "h", "n"),
                                                v0=(-1500.0, 1500.0)),
}
EXAMPLES = 6  # per scenario under the ci profile (66 in all), scaled for other profiles


def _n_examples() -> int:
    return max(2, round(EXAMPLES * settings.default.max_examples / 25))


def _draw(rng, shape, v0=(-85.0, 45.0)):
    """Random parameters and initial state per neuron (many start near or above threshold)."""
    u = lambda lo, hi: jnp.asarray(rng.uniform(lo, hi, shape))
    params = HHParams(gNa=u(60, 180), gK=u(15, 60), gL=u(0.05, 0.6), ENa=u(40, 60), EK=u(-85, -70),
                      EL=u(-65, -50), C=u(0.6, 1.6), V_th=u(-10, 30))
    y0 = hh_jax.HHState(V=u(*v0), m=u(0, 1), h=u(0, 1), n=u(0, 1))
    return params, y0


def _close(name, a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fused_kernel_equals_scan_loop(name):
    sc = SCENARIOS[name]

    @settings(max_examples=_n_examples(), deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([2.0, 10.0, 40.0, 150.0]))
    def check(seed, scale):
        rng = np.random.default_rng(seed)
        params, y0 = _draw(rng, sc.shape, sc.v0)
        stim = sc.stimulus(rng, sc.shape, scale, sc.t0, sc.dt, sc.n_steps)
        kw = dict(duration=sc.n_steps * sc.dt, dt=sc.dt, y0=y0, record=sc.record, record_every=sc.record_every,
                  max_spikes=sc.max_spikes, spike_interpolation=sc.interp, t0=sc.t0)
        f = hh_jax.simulate(params, stim, stepper=hh_jax.ExpEuler(staggered=sc.staggered), backend=hh_jax.FusedCPU(), **kw)
        s = hh_jax.simulate(params, stim, stepper=hh_jax.ExpEuler(staggered=sc.staggered), backend=hh_jax.ScanLoop(), **kw)
        np.testing.assert_array_equal(np.asarray(f.spike_count), np.asarray(s.spike_count))
        assert f.spike_times.shape == s.spike_times.shape
        _close("spike_times", f.spike_times, s.spike_times)
        for v in "Vmhn":
            _close(f"final_state.{v}", getattr(f.final_state, v), getattr(s.final_state, v))
        np.testing.assert_array_equal(np.asarray(f.t), np.asarray(s.t))
        for r in sc.record:
            assert getattr(f, r).shape == getattr(s, r).shape, r
            _close(r, getattr(f, r), getattr(s, r))

    check()


def test_the_scenarios_cover_what_they_claim():
    # every public stimulus class appears; spikes happen (the comparison is not vacuous)
    rng = np.random.default_rng(0)
    classes = set()

    def walk(s):
        classes.add(type(s).__name__)
        for child in getattr(s, "terms", ()) + getattr(s, "stimuli", ()):
            walk(child)
        for attr in ("stimulus",):
            if hasattr(s, attr):
                walk(getattr(s, attr))

    for sc in SCENARIOS.values():
        walk(sc.stimulus(rng, sc.shape, 10.0, sc.t0, sc.dt, sc.n_steps))
    public = {n for n in dir(hh_jax) if isinstance(getattr(hh_jax, n), type)
              and issubclass(getattr(hh_jax, n), hh_jax.AbstractStimulus) and n != "AbstractStimulus"}
    assert public <= classes, public - classes
    sizes = {int(np.prod(sc.shape)) for sc in SCENARIOS.values()}
    assert {1, 127, 128, 129} <= sizes
    assert {1, 2, 3} <= {sc.n_steps for sc in SCENARIOS.values()}
    assert any(len(sc.shape) > 1 for sc in SCENARIOS.values())
    sc = SCENARIOS["129, many steps, square - sections"]
    params, y0 = _draw(rng, sc.shape)
    r = hh_jax.simulate(params, sc.stimulus(rng, sc.shape, 150.0, sc.t0, sc.dt, sc.n_steps), duration=sc.n_steps * sc.dt,
                        dt=sc.dt, y0=y0, t0=sc.t0, record=(), max_spikes=sc.max_spikes)
    assert int(np.sum(np.asarray(r.spike_count) > sc.max_spikes)) > 0  # the spike buffer overflows
