"""Losses against hand computation; gradients of objectives against central differences."""

import jax
import jax.numpy as jnp
import numpy as np

import hh_jax
import hh_jax.fit as hf


def test_trace_mse_by_hand():
    a = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    b = np.array([[1.0, 1.0], [2.0, 1.0], [1.0, 5.0]])
    per = np.array([(1 + 0 + 9) / 3, (0 + 4 + 0) / 3])
    np.testing.assert_allclose(hf.trace_mse(jnp.asarray(a), jnp.asarray(b)), per.mean())
    w = np.array([3.0, 1.0])
    np.testing.assert_allclose(hf.trace_mse(jnp.asarray(a), jnp.asarray(b), weights=jnp.asarray(w)),
                               (w * per).sum() / w.sum())


def test_soft_spike_count_counts_simulated_spikes():
    r = hh_jax.simulate(hh_jax.HHParams.hh1952(), hh_jax.Step(jnp.array([0.0, 5.0, 10.0, 20.0])),
                        duration=100.0, dt=0.025)
    soft = np.asarray(hf.soft_spike_count(r.V, V_th=0.0, width=2.0))
    np.testing.assert_allclose(soft, np.asarray(r.spike_count), atol=0.05)


def test_window_stats_by_hand():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(10, 2)) * 3.0
    mean, std, count = hf.window_stats(jnp.asarray(V), samples_per_window=4)
    W = V[:8].reshape(2, 4, 2)
    np.testing.assert_allclose(mean, W.mean(1), rtol=1e-12)
    np.testing.assert_allclose(std, W.std(1), rtol=1e-9)
    s = 1 / (1 + np.exp(-W / 5.0))
    np.testing.assert_allclose(count, np.clip(np.diff(s, axis=1), 0, None).sum(1), rtol=1e-12)


def test_spike_time_loss_by_hand():
    inf = np.inf
    a = jnp.array([[10.0], [30.0], [inf]])
    b = jnp.array([[12.0], [inf]])
    # padded to 3 slots, inf -> t_end = 50: (10-12)^2, (30-50)^2, (50-50)^2
    np.testing.assert_allclose(hf.spike_time_loss(a, b, t_end=50.0), (4.0 + 400.0 + 0.0) / 3)


def _fd_check(loss, u, h=1e-4, rtol=2e-4):
    g = np.asarray(jax.grad(loss)(u))
    for i in range(u.shape[0]):
        e = np.zeros(u.shape[0])
        e[i] = h
        fd = (float(loss(u + e)) - float(loss(u - e))) / (2 * h)
        assert abs(g[i] - fd) <= rtol * max(abs(fd), 1e-3), (i, g[i], fd)


def _data():
    truth = hh_jax.HHParams.hh1952()
    stim = hh_jax.Step(jnp.array([5.0, 20.0]))
    r = hh_jax.simulate(truth, stim, duration=10.0, dt=0.025, max_spikes=6)
    noise = 1.0 * jax.random.normal(jax.random.key(0), r.V.shape)
    return truth, stim, r, r.V + noise


def test_trace_objective_gradient_matches_central_differences():
    truth, stim, _, V = _data()
    space = hf.ParamSpace(truth, ("gNa", "gK", "gL", "ENa", "EK"))
    u0 = space.to_unconstrained(truth.replace(gNa=110.0, gK=39.0, gL=0.25, ENa=52.0, EK=-75.0))
    obj = hf.TraceObjective(stim, V, dt=0.025, summary_weight=0.1)
    _fd_check(jax.jit(lambda u: obj(space.to_params(u))), u0)


def test_spike_time_objective_gradient_matches_central_differences():
    truth, stim, r, _ = _data()
    obj = hf.SpikeTimeObjective(stim, r.spike_times, dt=0.025, duration=10.0)
    space = hf.ParamSpace(truth, ("gNa", "gK"))
    u0 = space.to_unconstrained(truth.replace(gNa=115.0, gK=37.0))
    loss = jax.jit(lambda u: obj(space.to_params(u)))
    assert float(loss(u0)) > 0
    _fd_check(loss, u0, h=1e-5, rtol=1e-3)


def test_checkpointed_gradient_equals_plain():
    truth, stim, _, V = _data()
    space = hf.ParamSpace(truth, ("gNa", "gK"))
    u0 = space.to_unconstrained(truth.replace(gNa=110.0, gK=39.0))
    g = [jax.grad(lambda u: hf.TraceObjective(stim, V, dt=0.025, backend=b)(space.to_params(u)))(u0)
         for b in (None, hh_jax.ScanLoop(checkpoint=True))]
    np.testing.assert_allclose(g[0], g[1], rtol=1e-10)


def test_residuals_square_sum_equals_loss():
    truth, stim, r, V = _data()
    p = truth.replace(gNa=110.0)
    obj = hf.TraceObjective(stim, V, dt=0.025, weights=jnp.array([1.0, 3.0]))
    np.testing.assert_allclose(jnp.sum(obj.residuals(p) ** 2), obj(p), rtol=1e-12)
    st = hf.SpikeTimeObjective(stim, r.spike_times, dt=0.025, duration=10.0)
    np.testing.assert_allclose(jnp.sum(st.residuals(p) ** 2), st(p), rtol=1e-12)
