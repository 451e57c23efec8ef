"""Exact spike times: Hermite / dense-output root finding, and their IFT gradients vs FD."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax._spikes import hermite_crossing
from backends import loop
from helpers import central_fd, reference_spikes


def test_hermite_crossing_is_a_root_of_the_cubic():
    # V(t) = t^3 - t on [1, 1.5]: Hermite reproduces cubics exactly, so the crossing of
    # V_th = 1 is the real root of t^3 - t - 1 (1.3247179572447...).
    V = lambda t: t**3 - t
    dV = lambda t: 3 * t**2 - 1
    t = hermite_crossing(1.0, 0.5, V(1.0), V(1.5), dV(1.0), dV(1.5), 1.0)
    assert abs(float(t) - 1.324717957244746) < 1e-13
    # IFT derivative wrt the threshold: dt*/dV_th = 1/V'(t*).
    g = jax.grad(lambda th: hermite_crossing(1.0, 0.5, V(1.0), V(1.5), dV(1.0), dV(1.5), th))(1.0)
    assert abs(float(g) - 1.0 / dV(1.324717957244746)) < 1e-12


def test_hermite_refinement_removes_detection_error():
    # RK4 at dt = 0.01: the chord's detection error (~1e-4 ms) dominates; Hermite leaves RK4's own.
    ref = reference_spikes("hh1952", 10.0, 50.0)
    p = hh_jax.HHParams.hh1952()
    err = {}
    for si, choice in (("linear", hh_jax.LinearSpikes()), ("hermite", hh_jax.HermiteSpikes())):
        r = hh_jax.simulate(p, 10.0, duration=50.0, dt=0.01, stepper=hh_jax.RK4(), record=(),
                            spike_interpolation=choice)
        t = np.asarray(r.spike_times)
        t = t[np.isfinite(t)]
        assert len(t) == len(ref)
        err[si] = np.max(np.abs(t - ref))
    assert err["linear"] > 5e-5
    assert err["hermite"] < 5e-6


def _first_spikes(stepper, **kw):
    def f(gNa, amp):
        r = hh_jax.simulate(hh_jax.HHParams.hh1952(gNa=gNa), hh_jax.Constant(amp), duration=4.0,
                            dt=0.02, stepper=stepper, record=(), max_spikes=1, **kw)
        return r.spike_times[0]

    # one compilation: the values (and the FD below) are the primal of the jitted value_and_grad
    return jax.jit(jax.value_and_grad(f, argnums=(0, 1)))


def _check_gradients(value_and_grad):
    f = lambda gNa, amp: float(value_and_grad(jnp.asarray(gNa), jnp.asarray(amp))[0])  # noqa: E731
    x = (120.0, 10.0)
    assert 1.0 < f(*x) < 4.0  # the first spike (hh1952, I = 10: at ~2.3 ms)
    grad = value_and_grad(jnp.asarray(x[0]), jnp.asarray(x[1]))[1]
    fd = (
        central_fd(lambda v: f(v, x[1]), x[0], 1e-3),
        central_fd(lambda v: f(x[0], v), x[1], 1e-4),
    )
    for g, d in zip(grad, fd):
        assert abs(float(g) - d) <= 1e-4 * abs(d), (float(g), d)


def test_spike_time_gradients_match_fd_dense_output():
    _check_gradients(_first_spikes(diffrax.Tsit5()))


def test_spike_time_gradients_match_fd_exp_euler_hermite(backend):
    _check_gradients(_first_spikes(**loop(backend), spike_interpolation=hh_jax.HermiteSpikes()))


def test_spike_times_do_not_depend_on_the_population():
    # 40 asynchronous neurons (few crossings per step) and 40 synchronous ones (40 at once) in
    # one population get the same spike times and gradients as in populations of 40 each (the
    # loop records every crossing's bracket alike; _spikes.refine locates them after it).
    I_async = jnp.linspace(7.0, 15.0, 40)
    I = jnp.concatenate([I_async, jnp.full(40, 10.0)])
    kw = dict(duration=15.0, dt=0.01, record=(), max_spikes=4)
    p = hh_jax.HHParams.hh1952()

    def times(I):
        return hh_jax.simulate(p, I, **kw).spike_times

    both = times(I)
    halves = jnp.concatenate([times(I[:40]), times(I[40:])], axis=1)
    assert np.array_equal(np.isfinite(both), np.isfinite(halves))
    fin = np.isfinite(np.asarray(halves))
    assert fin[0].all()  # every neuron spikes: both paths are used
    np.testing.assert_allclose(np.asarray(both)[fin], np.asarray(halves)[fin], rtol=0, atol=1e-9)

    def first_spikes(I):
        t = times(I)[0]
        return jnp.sum(jnp.where(jnp.isfinite(t), t, 0.0))

    g_both = jax.grad(first_spikes)(I)
    g_halves = jnp.concatenate([jax.grad(first_spikes)(I[:40]), jax.grad(first_spikes)(I[40:])])
    assert np.all(np.asarray(g_both) < 0)  # more current, earlier first spike
    np.testing.assert_allclose(np.asarray(g_both), np.asarray(g_halves), rtol=1e-9, atol=1e-12)
