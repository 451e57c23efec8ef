"""simulate: recording, spikes, populations, compilation, vmap, gradients, bad input.

The tests that take a ``backend`` run on both `ExpEuler` loops (the fused kernel and the
`lax.scan` loop, see ``backends.py``)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import HHParams
from backends import loop
from helpers import central_fd


def test_result_shapes_and_time_axis(backend):
    r = hh_jax.simulate(HHParams(gNa=jnp.full((2, 3), 120.0)), 10.0, duration=10.0, dt=0.1, record=("V", "m"),
                        **loop(backend))
    assert r.t.shape == (101,) and r.V.shape == (101, 2, 3) and r.m.shape == (101, 2, 3)
    np.testing.assert_allclose(r.t, np.arange(101) * 0.1, atol=1e-12)
    assert r.h is None and r.spike_count.shape == (2, 3)
    assert r.spike_times.shape == (6, 2, 3)  # ceil(10/2)+1 rows
    np.testing.assert_allclose(r.V[0], -65.0)


def test_record_every_decimates_inside_the_scan(backend):
    p, kw = HHParams(), loop(backend)
    full = hh_jax.simulate(p, 10.0, duration=20.0, dt=0.01, record=("V", "n"), **kw)
    dec = hh_jax.simulate(p, 10.0, duration=20.0, dt=0.01, record=("V", "n"), record_every=7, **kw)
    n = 2000 // 7
    assert dec.V.shape == (n + 1,)
    np.testing.assert_array_equal(dec.V, full.V[::7][: n + 1])
    np.testing.assert_array_equal(dec.t, full.t[::7][: n + 1])
    # remainder steps are still simulated: same final state and spikes
    np.testing.assert_array_equal(dec.final_state.V, full.final_state.V)
    np.testing.assert_array_equal(dec.spike_times, full.spike_times)
    # memory: the decimated trace is what the compiled program outputs
    none = hh_jax.simulate(p, 10.0, duration=20.0, dt=0.01, record=(), **kw)
    assert none.V is None and int(none.spike_count) == int(full.spike_count)


def test_recorded_currents_and_conductances_are_consistent(backend):
    p = HHParams.hh1952()
    stim = hh_jax.Step(10.0, onset=2.0)
    r = hh_jax.simulate(p, stim, duration=20.0, dt=0.01, record=hh_jax.RECORDABLE, **loop(backend))
    y = hh_jax.HHState(r.V, r.m, r.h, r.n)
    c = hh_jax.currents(p, y)
    g = hh_jax.conductances(p, y)
    for name in ("INa", "IK", "IL"):
        np.testing.assert_allclose(getattr(r, name), getattr(c, name), rtol=1e-12)
    for name in ("gNa", "gK", "gL"):
        np.testing.assert_allclose(getattr(r, name), getattr(g, name), rtol=1e-12)
    np.testing.assert_array_equal(r.I, np.where(np.asarray(r.t) >= 2.0, 10.0, 0.0))


def test_spike_detection_linear_interpolation_and_tables(backend):  # the Hermite default: test_spike_times.py
    p = HHParams()
    r = hh_jax.simulate(p, jnp.array([0.0, 10.0, 20.0]), duration=100.0, dt=0.01, spike_interpolation=hh_jax.LinearSpikes(),
                        **loop(backend))
    V = np.asarray(r.V)
    t = np.asarray(r.t)
    for i in range(3):
        k = np.nonzero((V[:-1, i] < 20.0) & (V[1:, i] >= 20.0))[0]
        assert len(k) == int(r.spike_count[i])
        want = t[k] + 0.01 * (20.0 - V[k, i]) / (V[k + 1, i] - V[k, i])
        np.testing.assert_allclose(np.asarray(r.spike_times[: len(k), i]), want, rtol=1e-12)
        assert np.all(np.isinf(np.asarray(r.spike_times[len(k):, i])))
    table = r.spike_table()
    assert table.shape == (int(r.spike_count.sum()), 2)
    assert np.all(np.diff(table[:, 1]) >= 0)
    assert set(table[:, 0].astype(int)) == {1, 2}
    np.testing.assert_allclose(r.firing_rate, np.asarray(r.spike_count) / 0.1)


def test_max_spikes_truncates_times_not_counts(backend):
    kw = dict(duration=100.0, dt=0.01, record=(), **loop(backend))
    r = hh_jax.simulate(HHParams(), 10.0, max_spikes=3, **kw)
    full = hh_jax.simulate(HHParams(), 10.0, **kw)
    assert int(r.spike_count) == int(full.spike_count) > 3
    assert bool(r.spike_overflow)
    np.testing.assert_array_equal(r.spike_times, full.spike_times[:3])
    counts_only = hh_jax.simulate(HHParams(), 10.0, max_spikes=0, **kw)
    assert counts_only.spike_times.shape == (0,) and int(counts_only.spike_count) == int(full.spike_count)


def test_neuron_alone_equals_neuron_in_population(backend):
    gNa = jnp.linspace(90.0, 150.0, 7)
    I = jnp.linspace(2.0, 20.0, 7)
    kw = dict(duration=50.0, dt=0.02, **loop(backend))
    pop = hh_jax.simulate(HHParams(gNa=gNa), I, **kw)
    for i in (0, 3, 6):
        one = hh_jax.simulate(HHParams(gNa=gNa[i]), I[i], **kw)
        # equal up to rounding: XLA may fuse the population and the single-neuron program
        # differently (measured difference ~4e-12 mV)
        np.testing.assert_allclose(pop.V[:, i], one.V, rtol=1e-10, atol=1e-10)


def test_vmap_over_parameter_sets_equals_loop(backend):
    gK = jnp.array([30.0, 36.0, 42.0])
    kw = loop(backend)
    run = lambda g: hh_jax.simulate(HHParams(gK=g), 10.0, duration=50.0, dt=0.02, **kw).spike_times
    batched = jax.vmap(run)(gK)
    for i in range(3):
        np.testing.assert_allclose(batched[i], run(gK[i]), rtol=1e-13)


class _CountingStepper(hh_jax.AbstractStepper):
    order = 1
    inner: hh_jax.ExpEuler = hh_jax.ExpEuler()

    def step(self, t, y, dt, args):
        _TRACES.append(1)  # runs only while tracing
        return self.inner.step(t, y, dt, args)


_TRACES = []


def test_one_compile_serves_new_parameters_and_stimuli():
    _TRACES.clear()
    stepper = _CountingStepper()
    for gNa, amp in [(120.0, 10.0), (110.0, 12.0), (130.0, 3.0)]:
        p = HHParams(gNa=jnp.asarray(gNa), gK=jnp.asarray(36.0))
        hh_jax.simulate(p, hh_jax.Step(jnp.asarray(amp), onset=5.0), duration=20.0, dt=0.02, stepper=stepper)
    assert len(_TRACES) == 1

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def spike_count(params, amplitude):
        return hh_jax.simulate(params, hh_jax.Constant(amplitude), duration=20.0, dt=0.02).spike_count

    for g in (100.0, 120.0, 140.0):
        spike_count(HHParams(gNa=g), jnp.asarray(g / 10))


def test_grad_wrt_every_field_matches_central_differences():
    base = HHParams()
    stim = hh_jax.Constant(10.0)

    def loss(params):
        r = hh_jax.simulate(params, stim, duration=30.0, dt=0.01, record=("V",))
        first_two = jnp.where(jnp.isfinite(r.spike_times[:2]), r.spike_times[:2], 0.0)
        return jnp.mean((r.V + 65.0) ** 2) / 100.0 + jnp.sum(first_two)

    grads = jax.grad(loss)(base)
    for name in HHParams.FIELDS:
        x0 = float(getattr(base, name))
        h = 1e-5 * max(abs(x0), 1.0)
        f = lambda x: float(loss(base.replace(**{name: x})))
        fd = central_fd(f, x0, h)
        g = float(getattr(grads, name))
        assert np.isfinite(g), name
        np.testing.assert_allclose(g, fd, rtol=2e-5, atol=1e-9 * max(1.0, abs(fd)), err_msg=name)


def test_grad_wrt_stimulus_amplitude():
    f = lambda a: jnp.mean(hh_jax.simulate(HHParams(), hh_jax.PulseTrain([2.0], widths=1.0, amplitudes=a), duration=10.0, dt=0.01).V)
    g = float(jax.grad(f)(20.0))
    fd = central_fd(lambda a: float(f(a)), 20.0, 1e-4)
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_nan_is_never_silent():
    with pytest.raises(Exception, match="NaN/Inf"):
        r = hh_jax.simulate(HHParams(), 10.0, duration=100.0, dt=0.1, stepper=hh_jax.RK4())
        jax.block_until_ready(r)
    r = hh_jax.simulate(HHParams(), 10.0, duration=100.0, dt=0.1, stepper=hh_jax.RK4(), throw=False)
    assert not bool(r.finite)


def test_noise_and_sampled_stimuli_with_matching_grid(backend):
    key = jax.random.key(3)
    kw = dict(duration=50.0, dt=0.01, **loop(backend))
    w = hh_jax.WhiteNoise(key, sigma=3.0, dt=0.01, shape=2) + hh_jax.Constant(8.0)
    a = hh_jax.simulate(HHParams(), w, **kw)
    b = hh_jax.simulate(HHParams(), w, **kw)
    np.testing.assert_array_equal(a.V, b.V)
    assert a.V.shape == (5001, 2) and not np.array_equal(a.V[:, 0], a.V[:, 1])
    samples = jax.random.uniform(key, (5000, 10), minval=1.0, maxval=10.0)
    r = hh_jax.simulate(HHParams(), hh_jax.Sampled(samples, dt=0.01), record=("I",), **kw)
    np.testing.assert_array_equal(r.I[:-1], samples)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(dt=0.0), ValueError, "dt must be a positive"),
        (dict(dt=-0.1), ValueError, "dt must be a positive"),
        (dict(dt=float("nan")), ValueError, "dt must be a positive"),
        (dict(duration=0.0), ValueError, "duration must be a positive"),
        (dict(duration="10"), TypeError, "duration must be a number"),
        (dict(duration=10.0, dt=0.03), ValueError, "whole number of steps"),
        (dict(record=("V", "Vm")), ValueError, r"record: unknown variable\(s\) \['Vm'\]"),
        (dict(record_every=0), ValueError, "record_every"),
        (dict(max_spikes=-1), ValueError, "max_spikes"),
        (dict(stepper="rk4"), TypeError, "stepper must be an AbstractStepper"),
        (dict(y0=(-65.0, 0.1, 0.6, 0.3)), TypeError, "y0 must be an HHState"),
        (dict(stimulus=jnp.ones(3)), ValueError, r"population shapes do not broadcast: params \(2,\), stimulus \(3,\)"),
        (dict(stimulus=hh_jax.Sampled(jnp.ones(1000), dt=0.015)), ValueError, "not a whole multiple of the simulation dt"),
        (dict(stimulus=hh_jax.Sampled(jnp.ones(500), dt=0.01)), ValueError, r"stimulus samples cover \[0.0, 5.0\] ms"),
        (dict(stimulus=hh_jax.WhiteNoise(jax.random.key(0), sigma=1.0, dt=0.025)), ValueError, "sampled with dt=0.025"),
        (dict(stimulus="ten"), TypeError, "stimulus"),
        (dict(t0=float("inf")), ValueError, "t0"),
    ],
)
def test_bad_input_is_named(kwargs, exc, match):
    args = dict(stimulus=10.0, duration=10.0, dt=0.01)
    args.update(kwargs)
    stim = args.pop("stimulus")
    with pytest.raises(exc, match=match):
        hh_jax.simulate(HHParams(gNa=jnp.array([120.0, 100.0])), stim, **args)


def test_params_must_be_hhparams():
    with pytest.raises(TypeError, match="params must be an HHParams"):
        hh_jax.simulate({"gNa": 120.0}, 10.0, duration=10.0, dt=0.01)


def test_trace_accessor_names_missing_variables():
    r = hh_jax.simulate(HHParams(), 10.0, duration=1.0, dt=0.01)
    with pytest.raises(ValueError, match="'m' was not recorded"):
        r.trace("m")
    with pytest.raises(ValueError, match="unknown variable 'X'"):
        r.trace("X")
