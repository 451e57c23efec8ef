"""The optimisation loop: rejection of non-finite steps, multi-start recovery of conductances."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import hh_jax
import hh_jax.fit as hf


def test_non_finite_steps_are_rejected_and_best_is_kept():
    space = hf.ParamSpace(hh_jax.HHParams.hh1952(), ("gNa", "gK"))

    def loss(p):  # a bowl at gNa = 100, gK = 30 ... but NaN whenever gNa < 110
        value = ((p.gNa - 100.0) / 10.0) ** 2 + ((p.gK - 30.0) / 10.0) ** 2
        return jnp.where(p.gNa < 110.0, jnp.nan, value)

    u0 = space.to_unconstrained(hh_jax.HHParams.hh1952(gNa=130.0, gK=40.0))[None]
    with pytest.warns(RuntimeWarning, match="non-finite"):
        res = hf.fit(loss, space, steps=60, init=u0, optimizer=optax.sgd(0.05), progress=False)
    hist = np.asarray(res.history)[:, 0]
    assert np.isnan(hist).any() and np.isfinite(hist).any()
    assert int(res.n_rejected[0]) == int(np.isnan(hist).sum())
    assert np.all(np.isfinite(np.asarray(res.final_u)))
    # the best is the lowest finite loss seen, and its parameters are valid (gNa >= 110)
    # (the point after the last update is evaluated once more at the end)
    assert float(res.loss) <= np.nanmin(hist)
    assert 110.0 <= float(res.params.gNa) < 130.0
    assert float(loss(res.params)) == pytest.approx(float(res.loss), rel=1e-12)
    # rejected starts went back and retried with smaller steps: the loss did decrease
    assert float(res.loss) < hist[0] / 2


def test_fit_argument_errors():
    space = hf.ParamSpace(hh_jax.HHParams.hh1952(), ("gNa",))
    loss = lambda p: (p.gNa - 1.0) ** 2
    with pytest.raises(ValueError, match="steps"):
        hf.fit(loss, space, steps=0)
    with pytest.raises(ValueError, match="init"):
        hf.fit(loss, space, init=jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="clip"):
        hf.fit(loss, space, clip=-1.0)
    with pytest.raises(TypeError, match="ParamSpace"):
        hf.fit(loss, "gNa")


def test_multistart_recovers_conductances_from_noisy_trace():
    """Smaller version of the issue's benchmark: gNa and gK from two 30 ms steps (10 and 20 µA/cm²),
    σ = 1 mV, gL and the reversal potentials known."""
    t_start = time.perf_counter()
    truth = hh_jax.HHParams.hh1952()
    stim = hh_jax.Step(jnp.array([10.0, 20.0]))
    dt = 0.05
    r = hh_jax.simulate(truth, stim, duration=30.0, dt=dt)
    V = r.V + 1.0 * jax.random.normal(jax.random.key(42), r.V.shape)
    space = hf.ParamSpace(truth.replace(gNa=100.0, gK=30.0), ("gNa", "gK"))
    obj = hf.TraceObjective(stim, V, dt=dt)
    res = hf.fit(obj.window(horizon=0.5), space, n_starts=6, steps=60, key=jax.random.key(0),
                 rel=0.3, optimizer=optax.adam(0.05), progress=False)
    res = hf.fit(obj, space, init=res, steps=100, optimizer=optax.adam(0.02), progress=False)
    got = res.values()
    for name in ("gNa", "gK"):
        assert abs(got[name] / float(getattr(truth, name)) - 1) < 0.02, (name, got)
    # the fit is at the noise floor: mean squared residual ≈ σ² = 1 mV²
    assert 0.8 < float(res.loss) < 1.2
    assert res.best_loss.shape == (6,) and res.history.shape == (100, 6)
    assert time.perf_counter() - t_start < 60.0
