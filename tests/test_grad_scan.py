"""Reverse mode through the `lax.scan` loop (issue 14, first item).

The gradient of a trace loss through `simulate` — the scan path, and the fused path whose
derivatives are the scan's, with and without `checkpoint` — equals the gradient of a plain
`lax.scan` of the model's exponential-Euler step (the same arithmetic: to rounding) and central
finite differences; new parameter values reuse the compilation of `jax.grad`.
"""


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import HHParams, _model
from compile_count import count_compiles

DURATION, DT = 10.0, 0.025
CURRENT = jnp.asarray([7.0, 12.0])  # two neurons, both spiking within 10 ms


def _params(g):
    return eqx.tree_at(lambda p: (p.gNa, p.gK, p.gL), HHParams(), (g[0], g[1], g[2]))


def _loss(g, **kw):
    r = hh_jax.simulate(_params(g), CURRENT, duration=DURATION, dt=DT, **kw)
    return jnp.sum(r.V * r.V)


def _plain_loss(g):
    """Σ V² of a plain `lax.scan` of `_model.exp_euler_step` (V at t0 included, as `simulate`)."""
    params = _params(g)
    V0 = jnp.full(CURRENT.shape, -65.0)
    m0, h0, n0 = _model.steady_states(V0)
    dt = jnp.asarray(DT)

    @jax.checkpoint
    def step(y, _):
        y = _model.exp_euler_step(params, *y, CURRENT, dt, True)
        return y, y[0]

    _, Vs = jax.lax.scan(step, (V0, m0, h0, n0), None, length=round(DURATION / DT))
    return jnp.sum(V0 * V0) + jnp.sum(Vs * Vs)


G = jnp.asarray([120.0, 36.0, 0.3])


@pytest.fixture(scope="module")
def plain_grad():
    return np.asarray(jax.grad(_plain_loss)(G))


@pytest.mark.parametrize("checkpoint", [False, True])
def test_scan_gradient_is_the_plain_scan_gradient(plain_grad, checkpoint):
    g = jax.grad(lambda g: _loss(g, backend=hh_jax.ScanLoop(checkpoint=checkpoint)))(G)
    np.testing.assert_allclose(np.asarray(g), plain_grad, rtol=1e-10, atol=0)


def test_default_gradient_matches_central_differences_and_compiles_once(plain_grad):
    grad = jax.grad(_loss)
    g = np.asarray(grad(G))  # warm-up: compiles
    np.testing.assert_allclose(g, plain_grad, rtol=1e-10, atol=0)
    f = jax.jit(_loss)
    for i in range(3):
        e = jnp.zeros(3).at[i].set(1e-6 * G[i])
        fd = (f(G + e) - f(G - e)) / (2 * e[i])
        np.testing.assert_allclose(g[i], float(fd), rtol=1e-6)
    values = [jnp.asarray([110.0, 40.0, 0.2]), jnp.asarray([130.0, 30.0, 0.4])]
    with count_compiles() as n:  # new parameter values: no new compilation
        gs = [grad(v) for v in values]
        jax.block_until_ready(gs)
    assert n[0] == 0
    assert not np.allclose(np.asarray(gs[0]), g)


def test_checkpointed_reverse_mode_saves_no_per_step_state():
    """With `checkpoint=True` the backward pass keeps ~√T carries, none per step (O(√T) memory);
    without, one carry per step (the rematerialised step), not every intermediate."""
    n_steps = round(DURATION / DT)

    def residuals(checkpoint):
        loss = lambda g: jnp.sum(hh_jax.simulate(
            _params(g), CURRENT, duration=DURATION, dt=DT, record=(),
            backend=hh_jax.ScanLoop(checkpoint=checkpoint)).final_state.V)
        _, vjp = jax.vjp(loss, G)
        leaves = [x for x in jax.tree_util.tree_leaves(vjp) if getattr(x, "ndim", 0)]
        return [x for x in leaves if x.shape[0] >= n_steps]

    assert residuals(True) == []
    per_step = residuals(False)
    assert 0 < len(per_step) <= 8  # the carry (V, m, h, n, counts, ...), not ~80 intermediates
