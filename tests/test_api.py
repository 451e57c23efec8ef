"""The public API's names (issue 13, item 7): each renamed name is gone (AttributeError, never a
silent second meaning), its replacement exists, and no public name means two things."""

import importlib

import pytest

import hh_jax
import hh_jax.plot

# (module, old name, new name): the renames of CHANGELOG.md
RENAMES = [
    ("hh_jax.plot", "currents", "current_traces"),
    ("hh_jax.plot", "conductances", "conductance_traces"),
    ("hh_jax.plot", "eigenvalues", "spectrum"),
    ("hh_jax.plot", "phase_plane", "phase_portrait"),
    ("hh_jax.fit", "fit", "optimize"),
    ("hh_jax", "resting_state", "equilibrium"),
    ("hh_jax.analysis", "steady_state_current", "equilibrium_current"),
    ("hh_jax.analysis", "FromRest", "FromHolding"),
]
GONE = [("hh_jax.analysis", "equilibrium_voltage")]
SUBPACKAGES = ("hh_jax", "hh_jax.analysis", "hh_jax.fit", "hh_jax.plot")


def _public(module):
    return {n for n in dir(module) if not n.startswith("_") and not isinstance(getattr(module, n), type(hh_jax))}


@pytest.mark.parametrize("module, old, new", RENAMES, ids=[f"{m}.{o}" for m, o, _ in RENAMES])
def test_old_name_fails_loudly_and_new_name_exists(module, old, new):
    mod = importlib.import_module(module)
    with pytest.raises(AttributeError):
        getattr(mod, old)
    assert callable(getattr(mod, new))


@pytest.mark.parametrize("module, old", GONE)
def test_removed_synonyms_fail_loudly(module, old):
    with pytest.raises(AttributeError):
        getattr(importlib.import_module(module), old)


def test_one_word_for_rest_and_equilibria():
    # equilibrium: a fixed point of the model; steady state: a gate's x_inf(V); "rest": no name
    names = set()
    for name in SUBPACKAGES:
        names |= _public(importlib.import_module(name))
    assert not [n for n in names if "rest" in n.lower()], names
    assert {n for n in names if "steady" in n.lower()} == {"steady_state", "steady_state_at"}


def test_no_public_name_means_two_things():
    seen = {}
    for name in SUBPACKAGES:
        for attr in _public(importlib.import_module(name)):
            seen.setdefault(attr, []).append(name)
    clashes = {k: v for k, v in seen.items() if len(v) > 1}
    assert not clashes, f"one name, several meanings: {clashes}"


def test_changelog_lists_every_rename():
    text = (hh_jax.__file__.rsplit("/hh_jax/", 1)[0] + "/CHANGELOG.md")
    with open(text, encoding="utf-8") as f:
        log = f.read()
    for module, old, new in RENAMES:
        assert f"`{module}.{old}` | `{module}.{new}`" in log, (old, new)
