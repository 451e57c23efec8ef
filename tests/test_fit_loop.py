"""The optimisation loop: rejection of non-finite steps, multi-start recovery of conductances."""


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
        res = hf.optimize(loss, space, steps=60, init=u0, optimizer=optax.sgd(0.05), progress=False)
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


def test_forward_and_reverse_mode_steps_agree():
    truth = hh_jax.HHParams.hh1952()
    stim = hh_jax.Step(jnp.array([10.0, 20.0]))
    r = hh_jax.simulate(truth, stim, duration=5.0, dt=0.05)
    obj = hf.TraceObjective(stim, r.V, dt=0.05)
    space = hf.ParamSpace(truth, ("gNa", "ENa"))
    u = space.sample(jax.random.key(0), 1)[0]
    f = [hf.value_and_grad(obj, space, mode=m)(u) for m in (hf.ForwardMode(), hf.ReverseMode())]
    np.testing.assert_allclose(f[0][0], f[1][0], rtol=1e-12)
    np.testing.assert_allclose(f[0][1], f[1][1], rtol=1e-9)


def test_fit_argument_errors():
    space = hf.ParamSpace(hh_jax.HHParams.hh1952(), ("gNa",))
    loss = lambda p: (p.gNa - 1.0) ** 2
    with pytest.raises(ValueError, match="steps"):
        hf.optimize(loss, space, steps=0)
    with pytest.raises(ValueError, match="init"):
        hf.optimize(loss, space, init=jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="clip"):
        hf.optimize(loss, space, clip=-1.0)
    with pytest.raises(TypeError, match="mode"):
        hf.optimize(loss, space, mode="forward")  # choices are objects: hf.ForwardMode()
    with pytest.raises(TypeError, match="ParamSpace"):
        hf.optimize(loss, "gNa")


def test_multistart_recovers_conductances_from_noisy_trace():
    """Smaller version of the issue's benchmark: gNa, gK, gL from two 30 ms steps (10 and
    20 µA/cm²) at dt = 0.05 ms with σ = 1 mV noise; 6 vmapped starts within ±40 %."""
    truth = hh_jax.HHParams.hh1952()
    stim = hh_jax.Step(jnp.array([10.0, 20.0]))
    dt = 0.05
    r = hh_jax.simulate(truth, stim, duration=30.0, dt=dt)
    V = r.V + 1.0 * jax.random.normal(jax.random.key(42), r.V.shape)
    space = hf.ParamSpace(truth, ("gNa", "gK", "gL"))
    obj = hf.TraceObjective(stim, V, dt=dt)
    res = hf.optimize(obj.window(horizon=0.5), space, n_starts=6, steps=30, key=jax.random.key(0),
                 rel=0.4, optimizer=optax.adam(0.05), progress=False)
    res = hf.optimize(obj, space, init=res, steps=30, optimizer=optax.adam(0.02), progress=False)
    assert res.best_loss.shape == (6,) and res.history.shape == (30, 6)
    res = hf.polish(obj, res, max_steps=15)
    errors = {n: np.abs(np.asarray(getattr(res.best_params, n)) / float(getattr(truth, n)) - 1)
              for n in space.names}
    assert np.mean(np.max(np.stack(list(errors.values())), axis=0) < 0.02) >= 0.8, errors
    for name in space.names:
        assert abs(res.values()[name] / float(getattr(truth, name)) - 1) < 0.02, (name, res.values())
    # the best fit is at least as good as the truth (the loss's minimum is below the truth's loss)
    assert float(res.loss) <= float(obj(truth)) + 1e-9


def test_default_mode_is_the_measured_choice():
    """`optimize`'s default gradient mode (`fit.default_mode`, from benchmarks/fit_mode.py):
    reverse where the loss's reverse mode is the fused kernel's adjoint, forward (≤ 8 fields)
    where it transposes a `lax.scan` loop (teacher forcing, ScanLoop, another stepper)."""
    import hh_jax.fit as hf
    from hh_jax._backends import fused_adjoint_by_default

    stim = hh_jax.Step(jnp.asarray([5.0, 10.0]))
    V = jnp.zeros((41, 2))
    free = hf.TraceObjective(stim, V, dt=0.025)
    fused = fused_adjoint_by_default()
    assert isinstance(hf.default_mode(free, 5), hf.ReverseMode if fused else hf.ForwardMode)
    assert isinstance(hf.default_mode(free.window(horizon=0.5), 5), hf.ForwardMode)
    assert isinstance(hf.default_mode(hf.TraceObjective(stim, V, dt=0.025, backend=hh_jax.ScanLoop()), 5),
                      hf.ForwardMode)
    assert isinstance(hf.default_mode(hf.TraceObjective(stim, V, dt=0.025, stepper=hh_jax.RK4()), 3),
                      hf.ForwardMode)
    assert isinstance(hf.default_mode(free.window(horizon=0.5), 9), hf.ReverseMode)
    forced = hf.TraceObjective(stim, V, dt=0.025, backend=hh_jax.FusedCPU(hh_jax.ScanLoop()))
    assert isinstance(hf.default_mode(forced, 2), hf.ForwardMode)
    assert isinstance(hf.default_mode(lambda p: p.gNa, 2), hf.ReverseMode if fused else hf.ForwardMode)
