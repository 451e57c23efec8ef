"""The issue's reference point: a plain ~40-line JAX `lax.scan` exponential Euler (BrainPy's rates).

Written the straightforward way (each rate on its own, ``x/(exp(x)−1)`` via a guarded
``expm1``), simultaneous exponential Euler like BrainPy's ``exp_auto``, spike counts only.
It is deliberately independent of hh_jax.
"""

import jax
import jax.numpy as jnp


def _vtrap(x):  # x / (exp(x) − 1), guarded at 0
    small = jnp.abs(x) < 1e-4
    xs = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 - 0.5 * x, xs / jnp.expm1(xs))


def make_baseline(n_steps: int, dt: float):
    """A jitted ``run(V0, m0, h0, n0, I) -> spike counts`` of `n_steps` steps of `dt` ms."""
    gNa, ENa, gK, EK, gL, EL, C, V_th = 120.0, 50.0, 36.0, -77.0, 0.03, -54.387, 1.0, 20.0

    def step(carry, _):
        V, m, h, n, I, count = carry
        am = _vtrap(-(V + 40.0) / 10.0)
        bm = 4.0 * jnp.exp(-(V + 65.0) / 18.0)
        ah = 0.07 * jnp.exp(-(V + 65.0) / 20.0)
        bh = 1.0 / (1.0 + jnp.exp(-(V + 35.0) / 10.0))
        an = 0.1 * _vtrap(-(V + 55.0) / 10.0)
        bn = 0.125 * jnp.exp(-(V + 65.0) / 80.0)
        relax = lambda x, a, b: a / (a + b) + (x - a / (a + b)) * jnp.exp(-dt * (a + b))
        gna, gk = gNa * m**3 * h, gK * n**4
        g = gna + gk + gL
        V_inf = (gna * ENa + gk * EK + gL * EL + I) / g
        V_new = V_inf + (V - V_inf) * jnp.exp(-dt * g / C)
        count = count + ((V < V_th) & (V_new >= V_th)).astype(count.dtype)
        return (V_new, relax(m, am, bm), relax(h, ah, bh), relax(n, an, bn), I, count), None

    @jax.jit
    def run(V0, m0, h0, n0, I):
        count = jnp.zeros(V0.shape, jnp.int32)
        carry, _ = jax.lax.scan(step, (V0, m0, h0, n0, I, count), None, length=n_steps)
        return carry[-1]

    return run
