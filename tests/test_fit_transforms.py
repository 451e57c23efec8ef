"""Reparametrisations of the fitted fields: round trips, bounds, starts, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
import hh_jax.fit as hf


def test_positive_round_trip_and_bounds():
    tr = hf.Positive(scale=120.0)
    x = jnp.array([1e-3, 0.3, 120.0, 5000.0])
    np.testing.assert_allclose(tr.forward(tr.inverse(x)), x, rtol=1e-12)
    u = jnp.array([-60.0, -5.0, 0.0, 5.0, 60.0])
    y = tr.forward(u)
    assert bool(jnp.all(y > 0)) and bool(jnp.all(jnp.isfinite(y)))
    # derivative of scale·softplus is scale·sigmoid
    g = jax.grad(lambda v: tr.forward(v))(0.3)
    np.testing.assert_allclose(g, 120.0 * jax.nn.sigmoid(0.3), rtol=1e-12)


def test_interval_round_trip_and_bounds():
    tr = hf.Interval(-150.0, -20.0)
    x = jnp.array([-149.0, -77.0, -21.0])
    np.testing.assert_allclose(tr.forward(tr.inverse(x)), x, rtol=1e-12)
    y = tr.forward(jnp.array([-30.0, 0.0, 30.0]))
    assert bool(jnp.all((y >= -150.0) & (y <= -20.0)))
    np.testing.assert_allclose(y[1], -85.0)


def test_param_space_maps_only_fitted_fields():
    base = hh_jax.HHParams.hh1952()
    space = hf.ParamSpace(base, ("gNa", "gK", "gL", "ENa", "EK"))
    u = space.to_unconstrained(base)
    assert u.shape == (5,)
    p = space.to_params(u)
    for f in hh_jax.HHParams.FIELDS:
        np.testing.assert_allclose(getattr(p, f), getattr(base, f), rtol=1e-12, atol=1e-12)
    # any finite u gives valid parameters
    p = space.to_params(jnp.array([-20.0, 20.0, -20.0, 20.0, -20.0]))
    assert float(p.gNa) > 0 and float(p.gL) > 0 and 0 < float(p.ENa) < 150 and -150 < float(p.EK) < -20
    assert float(p.EL) == float(base.EL)


def test_sample_within_relative_box():
    base = hh_jax.HHParams.hh1952()
    space = hf.ParamSpace(base, ("gNa", "EK"))
    u = space.sample(jax.random.key(0), 200, rel=0.5)
    v = space.values(u)
    g = np.asarray(v["gNa"])
    e = np.asarray(v["EK"])
    assert g.min() >= 60.0 - 1e-9 and g.max() <= 180.0 + 1e-9 and g.std() > 20.0
    assert e.min() >= -115.5 - 1e-9 and e.max() <= -38.5 + 1e-9


@pytest.mark.parametrize(
    "fit, match",
    [(("V_th",), "V_th"), (("gNa", "bogus"), "bogus"), ((), "at least one"),
     ({"EK": hf.Interval(-70.0, -20.0)}, "EK")],
)
def test_param_space_errors_name_the_field(fit, match):
    with pytest.raises(ValueError, match=match):
        hf.ParamSpace(hh_jax.HHParams.hh1952(), fit)


def test_transform_errors():
    with pytest.raises(ValueError, match="scale"):
        hf.Positive(scale=-1.0)
    with pytest.raises(ValueError, match="lower < upper"):
        hf.Interval(1.0, 0.0)
