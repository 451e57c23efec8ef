import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import HHParams

SEED_DEFAULTS = dict(ENa=50.0, gNa=120.0, EK=-77.0, gK=36.0, EL=-54.387, gL=0.03, C=1.0, V_th=20.0)


def test_defaults_are_the_seeds_values():
    p = HHParams()
    for name, value in SEED_DEFAULTS.items():
        assert float(getattr(p, name)) == value, name
    assert p.pop_shape == ()


def test_hh1952_preset_differs_only_in_gL():
    p, q = HHParams.hh1952(), HHParams()
    for name in HHParams.FIELDS:
        if name == "gL":
            assert float(p.gL) == 0.3
        else:
            assert float(getattr(p, name)) == float(getattr(q, name)), name
    assert HHParams.from_preset("hh1952").gL == 0.3
    assert HHParams.from_preset("brainpy").gL == 0.03
    assert HHParams.hh1952(gK=30.0).gK == 30.0


def test_course_notebook_convention_is_hh1952_shifted_by_65mV():
    # Seed 004: ENa=115, EK=-12, EL=10.6 with voltages relative to rest.
    p = HHParams.hh1952()
    assert float(p.ENa) == 115 - 65 and float(p.EK) == -12 - 65
    assert abs(float(p.EL) - (10.6 - 65)) < 0.02


def test_heterogeneous_population_is_arrays_in_fields():
    p = HHParams(gNa=jnp.linspace(100.0, 140.0, 5), EL=jnp.zeros((3, 1)) - 54.387)
    assert p.pop_shape == (3, 5)
    b = p.broadcast()
    assert all(getattr(b, f).shape == (3, 5) for f in HHParams.FIELDS)


def test_is_a_pytree_and_jit_traces_without_checks():
    p = HHParams()
    leaves = jax.tree_util.tree_leaves(p)
    assert len(leaves) == len(HHParams.FIELDS)  # 8 + temperature, q10 (issue 13)
    f = jax.jit(lambda q: q.gNa * 2)
    assert float(f(p)) == 240.0
    # gradients flow into every field
    g = jax.grad(lambda q: sum(getattr(q, f) for f in HHParams.FIELDS))(p)
    assert all(float(getattr(g, f)) == 1.0 for f in HHParams.FIELDS)


def test_integers_become_floats():
    p = HHParams(gNa=120)
    assert jnp.issubdtype(p.gNa.dtype, jnp.floating)


@pytest.mark.parametrize(
    "kwargs, culprit",
    [
        (dict(C=0.0), "C"),
        (dict(C=-1.0), "C"),
        (dict(gNa=-1.0), "gNa"),
        (dict(gK=-0.1), "gK"),
        (dict(gL=-0.01), "gL"),
        (dict(ENa=float("nan")), "ENa"),
        (dict(EK=float("inf")), "EK"),
        (dict(EL=np.array([0.0, np.nan])), "EL"),
        (dict(V_th=float("-inf")), "V_th"),
        (dict(gNa=jnp.array([120.0, -1.0])), "gNa"),
    ],
)
def test_invalid_values_raise_valueerror_naming_the_field(kwargs, culprit):
    with pytest.raises(ValueError, match=rf"HHParams\.{culprit}\b"):
        HHParams(**kwargs)


@pytest.mark.parametrize(
    "kwargs, culprit", [(dict(gNa="120"), "gNa"), (dict(C=None), "C"), (dict(EK=1 + 2j), "EK")]
)
def test_wrong_types_raise_typeerror_naming_the_field(kwargs, culprit):
    with pytest.raises(TypeError, match=rf"HHParams\.{culprit}\b"):
        HHParams(**kwargs)


def test_fields_that_do_not_broadcast_are_named():
    with pytest.raises(ValueError, match=r"gNa\(3,\).*gK\(4,\)"):
        HHParams(gNa=jnp.ones(3) * 120, gK=jnp.ones(4) * 36)


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="unknown preset 'foo'"):
        HHParams.from_preset("foo")
    with pytest.raises(ValueError, match="gX"):
        HHParams().replace(gX=1.0)
    with pytest.raises(TypeError):
        HHParams(120.0)  # keyword-only


def test_replace_validates():
    with pytest.raises(ValueError, match="HHParams.C"):
        HHParams().replace(C=0.0)


def test_positional_arguments_are_rejected():
    with pytest.raises(TypeError):
        hh_jax.HHParams(1.0, 120.0)


def test_fields_are_declared_once_keyword_only_with_a_converter_naming_them():
    """Issue 13 item 4: the dataclass fields are the one list (no hand-written __init__ or
    FIELDS); each is keyword-only, and its converter's errors name that very field."""
    import dataclasses

    fields = dataclasses.fields(HHParams)
    assert HHParams.FIELDS == tuple(f.name for f in fields)
    assert all(f.kw_only for f in fields)
    for f in fields:
        assert "converter" in f.metadata, f.name
        with pytest.raises(TypeError, match=rf"HHParams\.{f.name} must be a number or a float array"):
            HHParams(**{f.name: "x"})
    with pytest.raises(TypeError, match="positional argument"):
        HHParams(1.0)


def test_converter_runs_under_jit_and_replace():
    # integer tracers become the default float (as concrete integers do); replace re-validates
    out = jax.jit(lambda g: HHParams(gNa=g).gNa)(jnp.asarray(120))
    assert jnp.issubdtype(out.dtype, jnp.floating) and float(out) == 120.0
    assert HHParams().replace(gK=30).gK.dtype == jnp.result_type(float)
    with pytest.raises(TypeError, match=r"HHParams\.gK must be a number or a float array, got a bool"):
        HHParams().replace(gK=True)
    with pytest.raises(ValueError, match=r"HHParams\.gK .*>= 0"):
        HHParams().replace(gK=-1.0)


def test_constructed_inside_jit_from_python_numbers():
    # the invariants' checks of concrete fields run inside a trace without concretising tracers
    assert float(jax.jit(lambda x: HHParams.hh1952().replace(gNa=x).gNa + HHParams().gL)(1.0)) == 1.03
