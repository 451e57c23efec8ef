import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import HHParams, HHState
from helpers import PRESETS, rhs, steady_gates


def test_vector_field_matches_independent_numpy_model():
    rng = np.random.default_rng(0)
    for preset in ("brainpy", "hh1952"):
        p = HHParams.from_preset(preset)
        for _ in range(20):
            y = [rng.uniform(-90, 40), *rng.uniform(0, 1, 3)]
            I = rng.uniform(-20, 50)
            want = rhs(0.0, y, PRESETS[preset], lambda t: I)
            got = hh_jax.vector_field(0.0, HHState(*y), (p, hh_jax.Constant(I)))
            np.testing.assert_allclose([got.V, got.m, got.h, got.n], want, rtol=1e-12, atol=1e-12)


def test_vector_field_accepts_constant_current_and_stimulus_objects():
    p = HHParams()
    y = hh_jax.steady_state_at(-60.0)
    a = hh_jax.vector_field(1.0, y, (p, 5.0))
    b = hh_jax.vector_field(1.0, y, (p, hh_jax.Step(5.0, onset=0.5)))
    assert float(a.V) == float(b.V)


def test_currents_and_conductances():
    p = HHParams.hh1952()
    y = HHState(V=-20.0, m=0.5, h=0.4, n=0.6)
    c = hh_jax.currents(p, y)
    g = hh_jax.conductances(p, y)
    np.testing.assert_allclose(g.gNa, 120 * 0.5**3 * 0.4)
    np.testing.assert_allclose(g.gK, 36 * 0.6**4)
    np.testing.assert_allclose(g.gL, 0.3)
    np.testing.assert_allclose(c.INa, g.gNa * (-20 - 50))
    np.testing.assert_allclose(c.IK, g.gK * (-20 + 77))
    np.testing.assert_allclose(c.IL, 0.3 * (-20 + 54.387))
    # dV/dt = (I - total)/C
    d = hh_jax.derivatives(p, y, 3.0)
    np.testing.assert_allclose(d.V, 3.0 - c.total)


def test_vector_field_works_with_diffrax():
    p = HHParams.hh1952()
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(hh_jax.vector_field), diffrax.Tsit5(), 0.0, 20.0, 0.01,
        hh_jax.steady_state_at(-65.0), args=(p, hh_jax.Constant(10.0)),
        stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-8),
        saveat=diffrax.SaveAt(ts=jnp.linspace(0.0, 20.0, 2001)),
    )
    assert float(jnp.max(sol.ys.V)) > 20.0  # a spike within 20 ms


def test_steady_state_at_matches_numpy():
    y = hh_jax.steady_state_at(-65.0, shape=(3,))
    assert y.shape == (3,)
    np.testing.assert_allclose([y.m[0], y.h[0], y.n[0]], steady_gates(-65.0), rtol=1e-13)
    assert np.all(np.asarray(y.V) == -65.0)


def test_brainpy_initializer_is_reproducible_and_in_range():
    a = hh_jax.brainpy_initial_state(jax.random.key(1), (1000,))
    b = hh_jax.brainpy_initial_state(jax.random.key(1), 1000)
    c = hh_jax.brainpy_initial_state(jax.random.key(2), 1000)
    assert np.array_equal(a.V, b.V) and not np.array_equal(a.V, c.V)
    assert float(a.V.min()) >= -70.0 and float(a.V.max()) < -60.0
    assert float(a.m[0]) == 0.5 and float(a.h[0]) == 0.6 and float(a.n[0]) == 0.32
    with pytest.raises(ValueError, match="shape"):
        hh_jax.brainpy_initial_state(jax.random.key(0), (0,))


def test_hh1952_resting_potential():
    y = hh_jax.equilibrium(HHParams.hh1952())
    assert abs(float(y.V) - (-64.996)) <= 1e-3
    # residual of the full 4-D vector field is zero
    d = hh_jax.vector_field(0.0, y, (HHParams.hh1952(), 0.0))
    assert max(abs(float(x)) for x in (d.V, d.m, d.h, d.n)) < 1e-10


def test_resting_state_independent_reference():
    from scipy.optimize import brentq

    for preset in ("brainpy", "hh1952"):
        P = PRESETS[preset]
        for I in (0.0, 2.0):
            def f(V):
                m, h, n = steady_gates(V)
                return rhs(0, [V, m, h, n], P, lambda t: I)[0]
            Vref = brentq(f, -90, -50, xtol=1e-14)
            got = hh_jax.equilibrium(HHParams.from_preset(preset), I)
            np.testing.assert_allclose(float(got.V), Vref, atol=1e-9)


def test_resting_state_population_and_gradient():
    p = HHParams.hh1952(gL=jnp.array([0.2, 0.3, 0.4]))
    V = hh_jax.equilibrium(p).V
    assert V.shape == (3,)
    f = lambda gL: hh_jax.equilibrium(HHParams.hh1952(gL=gL)).V
    g = jax.grad(f)(0.3)
    fd = (f(0.3 + 1e-5) - f(0.3 - 1e-5)) / 2e-5
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    gI = jax.grad(lambda I: hh_jax.equilibrium(HHParams.hh1952(), I).V)(1.0)
    fdI = (hh_jax.equilibrium(HHParams.hh1952(), 1.0 + 1e-5).V - hh_jax.equilibrium(HHParams.hh1952(), 1.0 - 1e-5).V) / 2e-5
    np.testing.assert_allclose(gI, fdI, rtol=1e-6)
