"""Rates: exact values against an independent formula, and the removable singularities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from helpers import rates as np_rates

ALPHA_BETA = [hh_jax.alpha_m, hh_jax.beta_m, hh_jax.alpha_h, hh_jax.beta_h, hh_jax.alpha_n, hh_jax.beta_n]


def test_rates_match_the_seed_formulas():
    V = np.linspace(-120.0, 60.0, 1801) + 0.0123  # avoid the exact singular points here
    ref = np_rates(V)
    for f, r in zip(ALPHA_BETA, ref):
        np.testing.assert_allclose(np.asarray(f(jnp.asarray(V))), r, rtol=1e-13, atol=0)


def _analytic_derivatives(c, V0, Vsing):
    """alpha = c * u / (exp(u) - 1), u = -(V - Vsing)/10: value, d/dV, d²/dV² at V0 = Vsing."""
    # f(u) = 1 - u/2 + u^2/12 - ..., du/dV = -1/10
    return c * 1.0, c * 0.5 / 10.0, c * (1.0 / 6.0) / 100.0


@pytest.mark.parametrize("name, f, c, Vs", [("alpha_m", hh_jax.alpha_m, 1.0, -40.0), ("alpha_n", hh_jax.alpha_n, 0.1, -55.0)])
def test_value_grad_hessian_exact_at_singular_voltage(precision, name, f, c, Vs):
    V = jnp.asarray(Vs)
    assert V.dtype == (jnp.float64 if precision == "float64" else jnp.float32)
    val, d1, d2 = jax.jit(lambda v: (f(v), jax.grad(f)(v), jax.hessian(f)(v)))(V)
    exp_val, exp_d1, exp_d2 = _analytic_derivatives(c, Vs, Vs)
    rtol = 1e-6 if precision == "float32" else 1e-13
    for got, want in ((val, exp_val), (d1, exp_d1), (d2, exp_d2)):
        assert np.isfinite(float(got))
        np.testing.assert_allclose(float(got), want, rtol=rtol)


@pytest.mark.parametrize("f, Vs", [(hh_jax.alpha_m, -40.0), (hh_jax.alpha_n, -55.0)])
def test_derivatives_continuous_across_the_singularity(precision, f, Vs):
    """Autodiff near the singular voltage agrees with float64 central differences of the
    independent NumPy formula (which is exact there up to rounding)."""
    idx = 0 if f is hh_jax.alpha_m else 4
    g = lambda v: np_rates(np.array([v]))[idx][0]
    tol = 2e-5 if precision == "float32" else 1e-8
    derivs = jax.jit(lambda v: (jax.grad(f)(v), jax.hessian(f)(v)))
    for offset in [-3.0, -0.7, -0.02, 1e-3, 0.02, 0.7, 3.0]:
        V0 = Vs + offset
        h = 1e-3
        fd1 = (g(V0 + h) - g(V0 - h)) / (2 * h)
        fd2 = (g(V0 + h) - 2 * g(V0) + g(V0 - h)) / h**2
        d1, d2 = (float(x) for x in derivs(jnp.asarray(V0)))
        np.testing.assert_allclose(d1, fd1, rtol=tol, atol=tol * abs(fd1))
        np.testing.assert_allclose(d2, fd2, rtol=max(tol, 1e-5), atol=1e-6 * abs(fd2) + tol * 1e-3)


def test_no_nan_or_inf_in_wide_voltage_range(precision):
    V = jnp.linspace(-200.0, 200.0, 40001)
    V = jnp.concatenate([V, jnp.asarray([-40.0, -55.0, -35.0, -65.0])])
    funcs = list(ALPHA_BETA) + [
        (lambda v, f=f, gate=gate: f(gate, v))
        for gate in "mhn"
        for f in (hh_jax.steady_state, hh_jax.time_constant)
    ]

    @jax.jit
    def all_finite(V):
        outs = []
        for f in funcs:
            for g in (f, jax.vmap(jax.grad(f)), jax.vmap(jax.hessian(f))):
                outs.append(jnp.all(jnp.isfinite(g(V))))
        return jnp.stack(outs)

    ok = np.asarray(all_finite(V))
    assert ok.all(), np.nonzero(~ok)
    x = hh_jax.steady_state("m", V)
    assert bool(jnp.all((x >= 0) & (x <= 1)))


def test_extreme_voltages_do_not_overflow(precision):
    V = jnp.asarray([-1e4, -1000.0, 1000.0, 1e4])
    check = jax.jit(lambda V: jnp.stack([jnp.all(jnp.isfinite(g(V))) for f in ALPHA_BETA for g in (f, jax.vmap(jax.grad(f)))]))
    assert bool(jnp.all(check(V)))


def test_steady_states_and_time_constants():
    V = np.linspace(-100, 50, 151) + 0.01
    am, bm, ah, bh, an, bn = np_rates(V)
    for gate, (a, b) in {"m": (am, bm), "h": (ah, bh), "n": (an, bn)}.items():
        np.testing.assert_allclose(hh_jax.steady_state(gate, jnp.asarray(V)), a / (a + b), rtol=1e-13)
        np.testing.assert_allclose(hh_jax.time_constant(gate, jnp.asarray(V)), 1 / (a + b), rtol=1e-13)
    with pytest.raises(ValueError, match="unknown gate 'x'"):
        hh_jax.steady_state("x", jnp.asarray(-65.0))


def test_bernoulli_and_exprel_limits(precision):
    z = jnp.asarray(0.0)
    assert float(hh_jax.bernoulli(z)) == 1.0
    assert float(jax.grad(hh_jax.bernoulli)(z)) == -0.5
    np.testing.assert_allclose(float(jax.hessian(hh_jax.bernoulli)(z)), 1 / 6, rtol=1e-6)
    assert float(hh_jax.exprel(z)) == 1.0
    np.testing.assert_allclose(float(jax.grad(hh_jax.exprel)(z)), 0.5, rtol=1e-6)
    for u in [-30.0, -1.0, -0.3, -0.04, 0.04, 0.3, 1.0, 30.0]:
        np.testing.assert_allclose(float(hh_jax.bernoulli(jnp.asarray(u))), u / np.expm1(u), rtol=2e-6)
        np.testing.assert_allclose(float(hh_jax.exprel(jnp.asarray(u))), np.expm1(u) / u, rtol=2e-6)
