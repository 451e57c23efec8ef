"""Limit cycles by shooting against SciPy DOP853 periods; the fold of cycles; f-I curves."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import analysis_reference as R
import hh_jax
import hh_jax.analysis as A


@pytest.mark.parametrize("preset", ["hh1952", "brainpy"])
def test_limit_cycle_matches_reference(preset):
    p = hh_jax.HHParams.from_preset(preset)
    y, T = A.cycle_guess(p, 10.0)
    c = A.limit_cycle(p, 10.0, y, T)
    _, ref_rate, ref_vmax, ref_vmin = R.steady_rate(preset, 10.0)
    np.testing.assert_allclose(float(c.frequency), ref_rate, rtol=1e-6)
    np.testing.assert_allclose([float(c.V_max), float(c.V_min)], [ref_vmax, ref_vmin], atol=2e-3)
    assert float(c.residual) < 1e-7
    mult = np.abs(np.asarray(c.multipliers))
    assert abs(mult[0] - 1.0) < 1e-6 and np.all(mult[1:] < 1.0) and bool(c.stable)
    if preset == "hh1952":
        assert abs(float(c.frequency) - 68.3) < 0.05  # the issue's number


def test_cycle_branch_down_to_the_fold():
    p = hh_jax.HHParams.hh1952()
    b = A.cycle_branch(p, [8.0, 7.0, 6.5, 6.3, 6.27])
    # the stable orbit exists down to the fold of cycles near 6.26 (below it, firing from rest
    # dies out: test_fi_curve_from_rest_issue_numbers)
    np.testing.assert_allclose(np.asarray(b.I), [8.0, 7.0, 6.5, 6.3, 6.27])
    assert np.all(np.asarray(b.stable))
    np.testing.assert_allclose(float(b.frequency[3]), R.steady_rate("hh1952", 6.3)[1], rtol=1e-6)
    # minimum firing rate ~ 50 Hz: the rate does not go to zero at the onset
    assert 45.0 < float(b.frequency.min()) < 55.0


@pytest.mark.slow
def test_period_gradient_matches_fd():
    # the period is differentiable (implicit function theorem through the shooting Newton)
    p = hh_jax.HHParams.hh1952()
    state, T = A.cycle_guess(p, 8.0)
    # one compilation: the FD values are the primal of the same jitted value_and_grad
    value_and_grad = jax.jit(jax.value_and_grad(lambda I: A.limit_cycle(p, I, state, T).period))
    per = lambda I: float(value_and_grad(jnp.asarray(I))[0])  # noqa: E731
    g = float(value_and_grad(jnp.asarray(8.0))[1])
    fd = (per(8.0 + 1e-3) - per(8.0 - 1e-3)) / 2e-3
    assert abs(g - fd) <= 1e-4 * abs(fd) and g < 0


def test_fi_curve_from_rest_issue_numbers():
    p = hh_jax.HHParams.hh1952()
    I = np.array([6.24, 6.27, 10.0, 100.0])
    c = A.fi_curve(p, I, transient=300.0, window=300.0)
    r = np.asarray(c.rate)
    assert r[0] == 0.0 and r[3] == 0.0  # below the onset; depolarization block
    assert r[1] > 45.0
    assert abs(r[2] - 68.3) < 0.1
    np.testing.assert_allclose(r[2], R.steady_rate("hh1952", 10.0)[0], rtol=2e-3)
    assert c.onset() == 6.27 and c.block_onset() == 100.0
    # bistability: at 8 uA/cm^2 the equilibrium is stable (quiet) but a spike train persists
    q = A.fi_curve(p, [8.0, 12.0], start=A.FromEquilibrium(), transient=200.0, window=200.0)
    s = A.fi_curve(p, [8.0, 12.0], start=A.FromSpiking(), transient=200.0, window=200.0)
    assert float(q.rate[0]) == 0.0 and float(s.rate[0]) > 55.0
    np.testing.assert_allclose(float(q.rate[1]), float(s.rate[1]), rtol=1e-3)


def test_fi_curve_brainpy_matches_reference():
    p = hh_jax.HHParams.brainpy()
    c = A.fi_curve(p, [10.0, 100.0], transient=200.0, window=200.0)
    np.testing.assert_allclose(float(c.rate[0]), R.steady_rate("brainpy", 10.0)[0], rtol=2e-3)
    assert float(c.rate[1]) == 0.0


def test_bad_arguments():
    p = hh_jax.HHParams.hh1952()
    with pytest.raises(ValueError, match="transient"):
        A.fi_curve(p, [1.0], transient=-1.0)
    with pytest.raises(TypeError, match="start"):
        A.fi_curve(p, [1.0], start="rest")
    with pytest.raises(ValueError, match="currents"):
        A.fi_curve(p, [np.nan])
    with pytest.raises(ValueError, match="period"):
        A.limit_cycle(p, 10.0, hh_jax.equilibrium(p), -1.0)
    with pytest.raises(ValueError, match="no oscillation"):
        A.cycle_guess(p, 0.0)
