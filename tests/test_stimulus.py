import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax as hj


def ev(s, ts):
    return np.asarray(jax.vmap(s)(jnp.asarray(ts, dtype=float)))


def test_constant_and_population_broadcast():
    assert float(hj.Constant(3.0)(5.0)) == 3.0
    assert hj.Constant(jnp.array([1.0, 2.0]))(0.0).shape == (2,)


def test_step_sections_ramp():
    s = hj.Step(2.0, onset=10.0, offset=20.0)
    np.testing.assert_array_equal(ev(s, [9.99, 10.0, 19.99, 20.0]), [0, 2, 2, 0])
    assert list(s.jump_times(-np.inf, np.inf)) == [10.0, 20.0]
    sec = hj.Sections([1.0, 5.0, 0.0], [10.0, 20.0, 5.0])
    np.testing.assert_array_equal(ev(sec, [0.0, 9.9, 10.0, 29.9, 30.0, 35.0, -1]), [1, 1, 5, 5, 0, 0, 0])
    r = hj.Ramp(0.0, 10.0, t_start=10.0, t_end=20.0)
    np.testing.assert_allclose(ev(r, [5.0, 10.0, 15.0, 19.0, 20.0]), [0, 0, 5, 9, 0])


def test_pulse_train_matches_brainpy_spike_input_semantics():
    # brainpy.inputs.spike_input(sp_times=[500, 550], sp_lens=5, sp_sizes=5.)
    s = hj.PulseTrain([500.0, 550.0], widths=5.0, amplitudes=5.0)
    np.testing.assert_array_equal(ev(s, [499.99, 500.0, 504.99, 505.0, 552.0]), [0, 5, 5, 0, 5])
    per_neuron = hj.PulseTrain([1.0, 2.0], widths=0.5, amplitudes=jnp.array([[1.0, 0.0], [0.0, 3.0]]))
    np.testing.assert_array_equal(per_neuron(1.2), [1.0, 0.0])
    np.testing.assert_array_equal(per_neuron(2.2), [0.0, 3.0])
    np.testing.assert_array_equal(s.jump_times(-np.inf, np.inf), [500, 505, 550, 555])


def test_sine_square():
    s = hj.Sine(2.0, frequency=10.0, offset=1.0)  # 10 Hz -> period 100 ms
    np.testing.assert_allclose(ev(s, [0.0, 25.0, 50.0, 75.0]), [1, 3, 1, -1], atol=1e-12)
    q = hj.Square(4.0, frequency=20.0, duty=0.25)  # period 50 ms, on 12.5 ms
    np.testing.assert_array_equal(ev(q, [0.0, 12.4, 12.6, 49.9, 50.0]), [4, 4, 0, 0, 4])


def test_sampled_hold_and_linear():
    vals = jnp.arange(5.0)
    h = hj.Sampled(vals, dt=0.1)
    ts = np.arange(5) * 0.1
    np.testing.assert_array_equal(ev(h, ts), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(ev(h, ts + 0.05), [0, 1, 2, 3, 4])
    assert float(h(0.5)) == 0.0  # past the end
    lin = hj.Sampled(vals, dt=0.1, interpolation=hj.LinearSamples())
    np.testing.assert_allclose(ev(lin, [0.05, 0.25]), [0.5, 2.5])
    pop = hj.Sampled(jnp.ones((5, 3)), dt=0.1)
    assert pop(0.0).shape == (3,)


def test_sum_scale_and_stack():
    s = hj.Constant(1.0) + hj.Step(2.0, onset=1.0) - 0.5
    np.testing.assert_allclose(ev(s, [0.0, 2.0]), [0.5, 2.5])
    np.testing.assert_allclose(ev(3.0 * hj.Constant(2.0), [0.0]), [6.0])
    st = hj.Stack([hj.Constant(1.0), hj.Step(2.0, onset=1.0)])
    np.testing.assert_array_equal(st(2.0), [1.0, 2.0])
    assert set(s.jump_times(-np.inf, np.inf)) == {1.0}


def test_noise_is_reproducible_and_has_the_right_statistics():
    key = jax.random.key(0)
    w = hj.WhiteNoise(key, sigma=3.0, dt=0.01, shape=(200,), mean=1.0)
    ts = np.arange(2000) * 0.01
    a, b = ev(w, ts), ev(hj.WhiteNoise(key, sigma=3.0, dt=0.01, shape=(200,), mean=1.0), ts)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.mean(), 1.0, atol=0.02)
    np.testing.assert_allclose(a.std(), 3.0, rtol=0.01)
    np.testing.assert_array_equal(ev(w, ts + 0.005), a)  # constant within a bin
    ou = hj.OUNoise(key, mean=5.0, sigma=2.0, tau=5.0, dt=0.1, duration=20000.0, shape=(4,))
    x = ev(ou, np.arange(200000) * 0.1)
    np.testing.assert_allclose(x.mean(), 5.0, atol=0.1)
    np.testing.assert_allclose(x.std(), 2.0, rtol=0.05)
    lag = 50  # 5 ms = one correlation time
    xc = x - x.mean(0)
    rho = (xc[:-lag] * xc[lag:]).mean() / xc.var()
    np.testing.assert_allclose(rho, np.exp(-1.0), atol=0.05)


def test_gradients_flow_into_amplitudes():
    f = lambda a: hj.PulseTrain([1.0], widths=1.0, amplitudes=a)(1.5) + hj.Sine(a, frequency=250.0)(1.0)
    assert float(jax.grad(f)(2.0)) == pytest.approx(1.0 + np.sin(2 * np.pi * 0.25))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: hj.Step(1.0, onset=5.0, offset=2.0), "Step.offset"),
        (lambda: hj.Step("a"), "Step.amplitude"),
        (lambda: hj.Constant(float("nan")), "Constant.amplitude"),
        (lambda: hj.Sections([1.0, 2.0], [1.0]), "Sections.values"),
        (lambda: hj.Sections([1.0], [-1.0]), "Sections.durations"),
        (lambda: hj.Ramp(0.0, 1.0, t_start=5.0, t_end=5.0), "Ramp.t_end"),
        (lambda: hj.PulseTrain([1.0, 2.0], widths=-1.0, amplitudes=1.0), "PulseTrain.widths"),
        (lambda: hj.PulseTrain([1.0, 2.0], widths=1.0, amplitudes=[1.0, 2.0, 3.0]), "PulseTrain.amplitudes"),
        (lambda: hj.PulseTrain([[1.0]], widths=1.0, amplitudes=1.0), "PulseTrain.times"),
        (lambda: hj.Sine(1.0, frequency=0.0), "Sine.frequency"),
        (lambda: hj.Square(1.0, frequency=10.0, duty=1.5), "Square.duty"),
        (lambda: hj.Sampled(jnp.ones(3), dt=0.0), "Sampled.dt"),
        (lambda: hj.Sampled(jnp.ones(3), dt=0.1, interpolation="linear"), "Sampled.interpolation"),
        (lambda: hj.WhiteNoise(0, sigma=1.0, dt=0.1), "WhiteNoise.key"),
        (lambda: hj.WhiteNoise(jax.random.key(0), sigma=-1.0, dt=0.1), "WhiteNoise.sigma"),
        (lambda: hj.OUNoise(jax.random.key(0), mean=0.0, sigma=1.0, tau=0.0, dt=0.1, duration=1.0), "OUNoise.tau"),
        (lambda: hj.Stack([]), "Stack"),
        (lambda: hj.WhiteNoise(jax.random.key(0), sigma=1.0, dt=0.1, shape="12"), "WhiteNoise.shape"),
        (lambda: hj.WhiteNoise(jax.random.key(0), sigma=1.0, dt=0.1, shape=(2, True)), "WhiteNoise.shape"),
        (lambda: hj.OUNoise(jax.random.key(0), mean=0.0, sigma=1.0, tau=1.0, dt=0.1, duration=1.0, shape=2.5), "OUNoise.shape"),
    ],
)
def test_bad_stimulus_arguments_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
