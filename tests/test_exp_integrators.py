"""The exponential Runge–Kutta steppers: accuracy, stability at dt = 0.1 ms, convergence order."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax._steppers import _phi123
from helpers import reference_spikes


def _error(stepper, dt, duration=200.0):
    ref = reference_spikes("hh1952", 10.0, duration)
    r = hh_jax.simulate(hh_jax.HHParams.hh1952(), 10.0, duration=duration, dt=dt, stepper=stepper,
                        record=(), throw=False)
    t = np.asarray(r.spike_times)
    t = t[np.isfinite(t)]
    if len(t) != len(ref):
        return math.inf, len(t), len(ref)
    return float(np.max(np.abs(t - ref))), len(t), len(ref)


def test_exp_rk4_keeps_every_spike_at_dt_01_and_is_accurate():
    err, n, n_ref = _error(hh_jax.ExpRK4(), 0.1)
    assert n == n_ref == 14 and err < 0.05
    rk4_err, rk4_n, _ = _error(hh_jax.RK4(), 0.1)
    assert rk4_n < n_ref  # the contrast: classical RK4 loses spikes at this dt
    err, n, n_ref = _error(hh_jax.ExpRK4(), 0.025)
    assert n == n_ref and err <= 1e-3


@pytest.mark.parametrize("stepper,order", [(hh_jax.ExpRK4(), 4), (hh_jax.ExpMidpoint(), 2)],
                         ids=["exp_rk4", "exp_midpoint"])
def test_convergence_order(stepper, order):
    dts = np.array([0.05, 0.025, 0.0125]) if order == 4 else np.array([0.02, 0.01, 0.005])
    errs = np.array([_error(stepper, dt, duration=20.0)[0] for dt in dts])
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.5, (errs, slope)


def test_exp_midpoint_keeps_gates_in_unit_interval_at_large_dt():
    r = hh_jax.simulate(hh_jax.HHParams.hh1952(), 10.0, duration=100.0, dt=0.2,
                        stepper=hh_jax.ExpMidpoint(), record=("m", "h", "n"))
    for x in (r.m, r.h, r.n):
        assert float(jnp.min(x)) >= 0.0 and float(jnp.max(x)) <= 1.0
    assert int(r.spike_count) >= 5


def test_phi_functions():
    z = jnp.array([-1e-9, -0.3, -0.999999, -1.000001, -2.0, -40.0])
    e, p1, p2, p3 = _phi123(z)
    zf = np.asarray(z, dtype=np.longdouble)
    ex = np.exp(zf)
    r1 = np.expm1(zf) / zf
    r2 = (ex - 1 - zf) / zf**2
    r3 = (ex - 1 - zf - zf**2 / 2) / zf**3
    r3[0] = 1.0 / 6.0  # limit (the formula cancels catastrophically at 1e-9)
    r2[0] = 0.5
    for got, want in ((e, ex), (p1, r1), (p2, r2), (p3, r3)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want, float), rtol=1e-9)
