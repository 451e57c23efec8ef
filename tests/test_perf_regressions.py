"""The optimised hot loop equals straightforward implementations to rounding.

`gate_rates` (two exponentials for all six rates) against the separate rate functions and the
independent NumPy rates of `tests/helpers.py`; `ExpEuler.step` against a plain reference step
written here from the textbook formulas.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax._rates import gate_rates

import helpers

SEPARATE = (hh_jax.alpha_m, hh_jax.beta_m, hh_jax.alpha_h, hh_jax.beta_h, hh_jax.alpha_n, hh_jax.beta_n)


def test_gate_rates_equal_separate_rates_to_rounding(precision):
    dtype = jnp.float32 if precision == "float32" else jnp.float64
    V = jnp.concatenate([jnp.linspace(-200.0, 200.0, 40001, dtype=dtype), jnp.array([-40.0, -55.0], dtype)])
    eps = float(jnp.finfo(dtype).eps)
    both = jax.jit(lambda V: (gate_rates(V), tuple(f(V) for f in SEPARATE)))(V)
    for fast, slow in zip(*both):
        assert fast.dtype == dtype
        assert bool(jnp.all(jnp.isfinite(fast)))
        rel = jnp.abs(fast - slow) / jnp.abs(slow)
        # argument rounding of u = −(V+40)/10 (|u| ≤ 16) is amplified by exp: ≤ ~16 ulp
        assert float(jnp.max(rel)) < 24 * eps


def test_gate_rates_match_independent_numpy_rates():
    V = np.linspace(-150.0, 100.0, 2501)
    ours = [np.asarray(r) for r in jax.jit(gate_rates)(jnp.asarray(V))]
    ref = helpers.rates(V)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_gate_rates_derivatives_at_singular_and_extreme_voltages(precision):
    dtype = jnp.float32 if precision == "float32" else jnp.float64
    v = jnp.asarray([-40.0, -55.0, -200.0, 200.0, -65.0, -39.99, -55.01], dtype)
    tol = 1e-4 if precision == "float32" else 1e-10

    fast = lambda x: jnp.stack(gate_rates(x))
    slow = lambda x: jnp.stack([f(x) for f in SEPARATE])
    d1 = lambda f: jax.jit(jax.vmap(jax.jacfwd(f)))(v)
    d2 = lambda f: jax.jit(jax.vmap(jax.jacfwd(jax.jacrev(f))))(v)
    g, gs, H, Hs = d1(fast), d1(slow), d2(fast), d2(slow)
    assert bool(jnp.all(jnp.isfinite(g))) and bool(jnp.all(jnp.isfinite(H)))
    assert bool(jnp.all(jnp.abs(g - gs) <= tol * jnp.abs(gs) + 1e-30))
    assert bool(jnp.all(jnp.abs(H - Hs) <= 10 * tol * jnp.abs(Hs) + 1e-3 * tol))


@pytest.mark.parametrize("V0", [-40.0, -55.0])
def test_gate_rates_gradient_matches_central_differences_of_numpy_reference(V0):
    h = 1e-5
    for i in (0, 4):  # alpha_m, alpha_n: the removable singularities
        g = float(jax.grad(lambda x: gate_rates(x)[i])(jnp.asarray(V0)))
        fd = helpers.central_fd(lambda x: float(helpers.rates(np.array([x]))[i][0]), V0, h)
        assert abs(g - fd) < 1e-8 * abs(fd) + 1e-9


def _reference_step(y, I, p, dt):
    """Staggered exponential Euler written plainly from the textbook formulas (NumPy, float64)."""
    V, m, h, n = y
    am, bm, ah, bh, an, bn = helpers.rates(V)
    relax = lambda x, a, b: a / (a + b) + (x - a / (a + b)) * np.exp(-dt * (a + b))
    m, h, n = relax(m, am, bm), relax(h, ah, bh), relax(n, an, bn)
    gna, gk = p["gNa"] * m**3 * h, p["gK"] * n**4
    g = gna + gk + p["gL"]
    V_inf = (I + gna * p["ENa"] + gk * p["EK"] + p["gL"] * p["EL"]) / g
    V = V + (V_inf - V) * -np.expm1(-dt * g / p["C"])
    return V, m, h, n


def test_exp_euler_step_equals_reference_step():
    rng = np.random.default_rng(0)
    V = np.concatenate([rng.uniform(-90.0, 50.0, 500), [-40.0, -55.0]])
    m, h, n = (rng.uniform(0.01, 0.99, V.shape) for _ in range(3))
    I = rng.uniform(-5.0, 30.0, V.shape)
    p = helpers.PRESETS["brainpy"]
    dt = 0.025
    ours = hh_jax.ExpEuler().step(
        0.0, hh_jax.HHState(V=V, m=m, h=h, n=n), dt, (hh_jax.HHParams(), hh_jax.Constant(I))
    )
    ref = _reference_step((V, m, h, n), I, p, dt)
    for a, b in zip((ours.V, ours.m, ours.h, ours.n), ref):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12, atol=1e-12)


def test_exp_euler_trajectory_equals_reference_trajectory():
    p = helpers.PRESETS["brainpy"]
    dt, steps, I = 0.01, 5000, 10.0
    V0 = -65.0
    y = (np.array([V0]), *(np.array([g]) for g in helpers.steady_gates(V0)))
    Vs = [y[0][0]]
    for _ in range(steps):
        y = _reference_step(y, I, p, dt)
        Vs.append(y[0][0])
    r = hh_jax.simulate(hh_jax.HHParams(), I, duration=steps * dt, dt=dt)
    np.testing.assert_allclose(np.asarray(r.V), np.array(Vs), atol=1e-8)
    assert int(r.spike_count) == int(np.sum((np.array(Vs[:-1]) < 20.0) & (np.array(Vs[1:]) >= 20.0))) > 2
