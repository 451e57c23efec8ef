"""Accuracy of the scan steppers against an independent SciPy reference (float64).

The exponential-Euler tests take a ``backend``: they run on the fused kernel and on the
`lax.scan` loop (``backends.py``)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import hh_jax
from hh_jax import HHParams
from backends import loop
from helpers import PRESETS, reference_spikes, rhs, steady_gates


def spikes(preset, I, dt, stepper, duration=200.0, **kw):
    r = hh_jax.simulate(
        HHParams.from_preset(preset), I, duration=duration, dt=dt, stepper=stepper, record=(), throw=False, **kw
    )
    return np.asarray(r.spike_times)[: int(r.spike_count)]


@pytest.mark.parametrize("preset", ["brainpy", "hh1952"])
@pytest.mark.parametrize("I", [5.0, 10.0, 20.0])
def test_default_stepper_places_every_spike_within_0p02ms(preset, I, backend):
    ref = reference_spikes(preset, I)
    got = spikes(preset, I, 0.01, **loop(backend))
    assert len(ref) >= 1
    assert len(got) == len(ref), "missing or extra spikes"
    err = np.max(np.abs(got - ref))
    assert err < 0.02, err


def _order(errors, dts):
    slope, _ = np.polyfit(np.log(dts), np.log(errors), 1)
    return slope


def _check_order(stepper, order, **kw):
    """Regression of log(max spike-time error) on log(dt): the slope is the order."""
    dts = np.array([0.04, 0.02, 0.01, 0.005])
    ref = reference_spikes("hh1952", 10.0, 60.0)
    errs = []
    for dt in dts:
        got = spikes("hh1952", 10.0, dt, stepper, duration=60.0, **kw)
        assert len(got) == len(ref)
        errs.append(np.max(np.abs(got - ref)))
    assert abs(_order(errs, dts) - order) < 0.2, errs


@pytest.mark.parametrize("staggered, order", [(True, 2.0), (False, 1.0)], ids=["staggered", "simultaneous"])
def test_exp_euler_spike_time_convergence_order(staggered, order, backend):
    _check_order(order=order, **loop(backend, staggered=staggered))


def test_euler_spike_time_convergence_order():
    _check_order(hh_jax.Euler(), 1.0)


def test_rk4_state_convergence_order_is_four():
    """RK4's order, measured on the state at a fixed time, through the upstroke of the first
    spike (its spike times, refined by Hermite interpolation: test_spike_times.py)."""
    P = PRESETS["hh1952"]
    y0 = [-65.0, *steady_gates(-65.0)]
    T = 4.0
    ref = solve_ivp(rhs, (0.0, T), y0, method="DOP853", rtol=1e-13, atol=1e-13, args=(P, lambda t: 10.0)).y[:, -1]
    dts = np.array([0.04, 0.02, 0.01, 0.005])
    errs = []
    for dt in dts:
        r = hh_jax.simulate(HHParams.hh1952(), 10.0, duration=T, dt=dt, stepper=hh_jax.RK4(), record=())
        y = r.final_state
        errs.append(abs(float(y.V) - ref[0]))
    assert abs(_order(errs, dts) - 4.0) < 0.3, errs


def test_rk4_at_dt_0p1_fails_as_in_seed_001():
    """The seed-001 pitfall: RK4 at dt = 0.1 ms does not reproduce the spike train."""
    r = hh_jax.simulate(HHParams(), 10.0, duration=100.0, dt=0.1, stepper=hh_jax.RK4(), record=(), throw=False)
    ref = reference_spikes("brainpy", 10.0, 100.0)
    assert (not bool(r.finite)) or int(r.spike_count) < len(ref) // 2
    ok = hh_jax.simulate(HHParams(), 10.0, duration=100.0, dt=0.1, record=())
    assert int(ok.spike_count) == len(ref)  # the default stepper keeps every spike at dt = 0.1


def test_float32_spike_times_close_to_float64(float32, backend):
    import jax.numpy as jnp

    r = hh_jax.simulate(HHParams(), 10.0, duration=200.0, dt=0.01, record=("V",), **loop(backend))
    assert r.V.dtype == jnp.float32 and r.spike_times.dtype == jnp.float32
    ref = reference_spikes("brainpy", 10.0)
    got = np.asarray(r.spike_times)[: int(r.spike_count)]
    assert len(got) == len(ref)
    assert np.max(np.abs(got - ref)) < 0.03
