"""The fused CPU kernel of ExpEuler (`hh_jax/_fused.py`) against the `lax.scan` loop.

The kernel computes the same mathematics as `ExpEuler.step` in C++; the mathematics itself
(convergence order, spike times against SciPy references, ...) is tested through `simulate`,
which uses the kernel by default, in test_simulate_accuracy.py and test_spike_times.py. Here:
both implementations agree to rounding on every feature of `simulate` (stimulus kinds, records,
decimation, spike times, t0, the simultaneous variant, batching, derivatives), a neuron's
result does not depend on its position in the population, and recompilation is guarded.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import HHParams
from hh_jax._fused import kernel_path, unavailable_reason

pytestmark = pytest.mark.skipif(kernel_path() is None, reason="no C++ compiler: no fused kernel")

FUSED, SCAN = hh_jax.FusedCPU(), hh_jax.ScanLoop()


def _both(params, stimulus, **kw):
    return (hh_jax.simulate(params, stimulus, backend=FUSED, **kw),
            hh_jax.simulate(params, stimulus, backend=SCAN, **kw))


def _close(a, b, *, rtol=1e-9, atol=1e-9):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _same_result(f, s, record, *, rtol=1e-9, atol=1e-8):
    np.testing.assert_array_equal(np.asarray(f.spike_count), np.asarray(s.spike_count))
    _close(f.spike_times, s.spike_times, rtol=rtol, atol=atol)
    for v in "Vmhn":
        _close(getattr(f.final_state, v), getattr(s.final_state, v), rtol=rtol, atol=atol)
    _close(f.t, s.t, rtol=0, atol=0)
    for name in record:
        assert getattr(f, name).shape == getattr(s, name).shape, name
        _close(getattr(f, name), getattr(s, name), rtol=rtol, atol=atol)


STIMULI = {
    "constant": lambda: 10.0,
    "per-neuron constant": lambda: jnp.linspace(0.0, 20.0, 7),
    "step (population-wide)": lambda: hh_jax.Step(10.0, onset=5.0, offset=35.0),
    "square wave + constant": lambda: hh_jax.Square(20.0, frequency=100.0, duty=0.2) + 3.0,
    "per-neuron sine": lambda: hh_jax.Sine(amplitude=jnp.linspace(2.0, 12.0, 7), frequency=50.0, offset=6.0),
    "white noise per neuron": lambda: hh_jax.WhiteNoise(jax.random.key(3), sigma=2.0, dt=0.01, shape=(7,), mean=8.0),
}


@pytest.mark.parametrize("name", list(STIMULI))
def test_fused_equals_scan_for_each_stimulus_kind(name):
    stim = STIMULI[name]()
    record = ("V", "m", "INa", "gK", "I")
    f, s = _both(HHParams(), stim, duration=40.0, dt=0.01, y0=hh_jax.steady_state_at(jnp.full(7, -65.0)),
                 record=record, record_every=3)
    assert int(np.sum(f.spike_count)) > 0
    _same_result(f, s, record)


def test_fused_two_dimensional_population_with_a_broadcast_stimulus():
    # population (2, 3): gNa per row, a time-varying stimulus per column
    p = HHParams(gNa=jnp.array([[100.0], [130.0]]))
    stim = hh_jax.Sine(amplitude=jnp.array([2.0, 6.0, 10.0]), frequency=50.0, offset=8.0)
    f, s = _both(p, stim, duration=30.0, dt=0.01, record=("V", "I"), record_every=5)
    assert f.V.shape == (601, 2, 3) and f.spike_count.shape == (2, 3)
    _same_result(f, s, ("V", "I"))


@pytest.mark.parametrize("interp", [hh_jax.HermiteSpikes(), hh_jax.LinearSpikes()], ids=repr)
def test_fused_spike_times_equal_scan(interp):
    p = HHParams(gNa=jnp.linspace(100.0, 140.0, 5))
    kw = dict(duration=60.0, dt=0.025, record=(), t0=3.0, spike_interpolation=interp, max_spikes=2)
    f, s = _both(p, hh_jax.Step(12.0, onset=10.0, offset=50.0), **kw)
    assert np.all(np.asarray(f.spike_count) > 2)  # the buffer overflows: counts keep counting
    assert np.all(np.isfinite(np.asarray(f.spike_times)))
    _same_result(f, s, ())


def test_fused_simultaneous_variant_equals_scan():
    kw = dict(duration=30.0, dt=0.02, record=("V", "n"), record_every=7)
    f = hh_jax.simulate(HHParams(), 10.0, stepper=hh_jax.ExpEuler(staggered=False), backend=hh_jax.FusedCPU(), **kw)
    s = hh_jax.simulate(HHParams(), 10.0, stepper=hh_jax.ExpEuler(staggered=False), backend=hh_jax.ScanLoop(), **kw)
    _same_result(f, s, ("V", "n"))
    g = hh_jax.simulate(HHParams(), 10.0, **kw)  # staggered: a different scheme
    assert float(jnp.max(jnp.abs(g.V - f.V))) > 1e-3


def test_fused_float32_agrees_with_scan_to_float32_rounding(float32):
    f, s = _both(HHParams(), 10.0, duration=50.0, dt=0.01)
    assert f.V.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(f.spike_count), np.asarray(s.spike_count))
    _close(f.spike_times, s.spike_times, rtol=0, atol=1e-3)  # ms; f32 rounding along 5000 steps


def test_a_neurons_result_does_not_depend_on_its_position():
    # N = 1 runs the branchy scalar code, N = 301 the vectorised loop (and a scalar tail):
    # the same neuron must give bit-identical results everywhere.
    currents = jnp.linspace(0.0, 30.0, 301)
    pop = hh_jax.simulate(HHParams(), currents, duration=20.0, dt=0.01, record=("V",))
    for i in (0, 17, 150, 299, 300):
        one = hh_jax.simulate(HHParams(), currents[i], duration=20.0, dt=0.01, record=("V",))
        np.testing.assert_array_equal(np.asarray(one.V), np.asarray(pop.V[:, i]))
        np.testing.assert_array_equal(np.asarray(one.spike_times), np.asarray(pop.spike_times[:, i]))


def test_fused_under_vmap_equals_a_loop():
    gNa = jnp.array([90.0, 120.0, 150.0])
    run = lambda g: hh_jax.simulate(HHParams(gNa=g), 10.0, duration=20.0, dt=0.01, record=("V",), backend=FUSED)
    batched = jax.vmap(run)(gNa)
    for i, g in enumerate(gNa):
        one = run(g)
        np.testing.assert_array_equal(np.asarray(batched.V[i]), np.asarray(one.V))
        np.testing.assert_array_equal(np.asarray(batched.spike_times[i]), np.asarray(one.spike_times))


def test_fused_gradients_are_those_of_the_scan_loop():
    def loss(gNa, gK, backend):
        r = hh_jax.simulate(HHParams(gNa=gNa, gK=gK), hh_jax.Step(10.0, onset=2.0, offset=28.0), duration=30.0, dt=0.01,
                            record=("V",), backend=backend)
        return jnp.mean(r.V**2) + r.spike_times[0] + r.spike_times[1]

    x = (jnp.asarray(120.0), jnp.asarray(36.0))
    g_fused = jax.grad(loss, argnums=(0, 1))(*x, FUSED)
    g_scan = jax.grad(loss, argnums=(0, 1))(*x, SCAN)
    _close(g_fused, g_scan, rtol=1e-9, atol=0)
    # and forward mode, and finite differences (the derivative is of the right function)
    _, t = jax.jvp(lambda a: loss(a, x[1], FUSED), (x[0],), (jnp.asarray(1.0),))
    _close(t, g_scan[0], rtol=1e-9, atol=0)
    h = 1e-4
    fd = (loss(x[0] + h, x[1], FUSED) - loss(x[0] - h, x[1], FUSED)) / (2 * h)
    _close(g_fused[0], fd, rtol=1e-5, atol=0)


def test_fused_nan_is_caught_like_the_scan_loop():
    @eqx.filter_jit
    def run(values, throw):  # built inside jit: the NaN sample is not checked in Python
        return hh_jax.simulate(HHParams(), hh_jax.Sampled(values, dt=0.01), duration=1.0, dt=0.01,
                               backend=FUSED, throw=throw)

    values = jnp.full(100, 5.0).at[50].set(jnp.nan)
    with pytest.raises(Exception, match="the state became NaN/Inf"):
        jax.block_until_ready(run(values, True).V)
    r = run(values, False)
    assert not bool(r.finite)
    V = np.asarray(r.V)
    assert np.all(np.isfinite(V[:51])) and np.all(np.isnan(V[52:]))


def test_fused_is_used_by_default_and_compiles_once():
    def spikes(params, amplitude, stepper, backend=None):
        return hh_jax.simulate(params, hh_jax.Constant(amplitude), duration=20.0, dt=0.02, stepper=stepper,
                               backend=backend).spike_count

    lowered = lambda *a: jax.jit(spikes, static_argnums=(2, 3)).lower(HHParams(), jnp.asarray(10.0), *a).as_text()
    assert "hh_jax_expeuler_f64" in lowered(hh_jax.ExpEuler())
    assert "hh_jax_expeuler" not in lowered(hh_jax.ExpEuler(), SCAN)
    assert "hh_jax_expeuler" not in lowered(hh_jax.RK4())

    guarded = eqx.filter_jit(eqx.debug.assert_max_traces(spikes, max_traces=1))
    for g in (100.0, 120.0, 140.0):  # new values, same shapes: one trace
        guarded(HHParams(gNa=g), jnp.asarray(g / 10), hh_jax.ExpEuler())


def test_unavailable_reasons_and_the_fallback(monkeypatch):
    from hh_jax import _fused

    grid = ((10**5,), 10**4)  # population shape, steps
    noise = hh_jax.WhiteNoise(jax.random.key(0), sigma=1.0, dt=0.01, shape=(10**5,))
    assert "exceeds" in unavailable_reason(noise, *grid, jnp.float64)
    assert "float16" in unavailable_reason(hh_jax.Constant(1.0), *grid, jnp.float16)
    assert unavailable_reason(hh_jax.Constant(jnp.ones(10**5)), *grid, jnp.float32) is None
    p16 = HHParams(gNa=jnp.full((3,), 120.0, jnp.float16))
    with pytest.raises(ValueError, match="float16"):
        hh_jax.simulate(p16, 10.0, duration=5.0, dt=0.01, backend=FUSED)
    # Where the kernel cannot run, the automatic choice (backend=None) runs the lax.scan loop:
    # the same result as backend=ScanLoop(), bit for bit.
    monkeypatch.setattr(_fused, "MAX_TABLE", 0)
    stim = hh_jax.Step(10.0, onset=2.0)
    with pytest.raises(ValueError, match="exceeds 0 elements"):
        hh_jax.simulate(HHParams(), stim, duration=20.0, dt=0.01, backend=FUSED)
    auto = hh_jax.simulate(HHParams(), stim, duration=20.0, dt=0.01)
    scan = hh_jax.simulate(HHParams(), stim, duration=20.0, dt=0.01, backend=SCAN)
    np.testing.assert_array_equal(np.asarray(auto.V), np.asarray(scan.V))
    np.testing.assert_array_equal(np.asarray(auto.spike_times), np.asarray(scan.spike_times))


@pytest.mark.parametrize("threads", [1, 3, 16])
def test_a_neurons_result_does_not_depend_on_the_number_of_threads(monkeypatch, threads):
    # The kernel cuts the population into blocks of 128 neurons, or finer ones (multiples of 16)
    # when there are fewer blocks than threads, and its threads take blocks as they come (here
    # 301 neurons, 2000 steps: 128 + 128 + 45 for 1 and 3 threads, 4 × 64 + 45 for 16): every
    # cut must give bit-identical results per neuron.
    from hh_jax import _fused

    currents = jnp.linspace(0.0, 30.0, 301)
    run = lambda: hh_jax.simulate(HHParams(), currents, duration=20.0, dt=0.01, record=("V", "n"),
                                  backend=FUSED)
    ref = run()
    calls = []
    monkeypatch.setattr(_fused, "_threads", lambda: calls.append(threads) or threads)
    jax.clear_caches()
    got = run()
    assert calls, "the kernel was not traced again"
    for name in ("V", "n", "spike_times", "spike_count"):
        np.testing.assert_array_equal(np.asarray(getattr(got, name)), np.asarray(getattr(ref, name)))
