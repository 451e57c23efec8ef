"""Save/load round trips and the errors that name what is wrong in a file."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax


def _same_params(a, b):
    for f in hh_jax.HHParams.FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)), err_msg=f)


def test_params_json_round_trip_and_is_human_readable(tmp_path):
    p = hh_jax.HHParams.hh1952(gNa=jnp.array([100.0, 120.5, 140.25]))
    path = hh_jax.save_params(tmp_path / "p.json", p)
    data = json.loads(path.read_text())
    assert data["units"]["gNa"] == "mS/cm^2" and data["units"]["ENa"] == "mV"
    assert data["params"]["gL"] == 0.3 and data["params"]["gNa"] == [100.0, 120.5, 140.25]
    q = hh_jax.load_params(path)
    _same_params(p, q)
    assert q.pop_shape == (3,)


def test_hand_edited_params_are_used(tmp_path):
    path = hh_jax.save_params(tmp_path / "p.json", hh_jax.HHParams())
    text = path.read_text().replace('"gK": 36.0', '"gK": 30')
    path.write_text(text)
    assert float(hh_jax.load_params(path).gK) == 30.0


def _write(tmp_path, mutate):
    data = hh_jax.params_to_dict(hh_jax.HHParams())
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "mutate, error, fragment",
    [
        (lambda d: d["params"].pop("gNa"), ValueError, "gNa"),
        (lambda d: d["params"].update(gna=1.0), ValueError, "gna"),
        (lambda d: d["params"].update(EK="-77"), TypeError, "params.EK"),
        (lambda d: d["params"].update(C=True), TypeError, "params.C"),
        (lambda d: d["params"].update(gL=None), TypeError, "params.gL"),
        (lambda d: d["params"].update(gK=[1.0, [2.0]]), TypeError, "params.gK"),
        (lambda d: d["units"].update(gK="S/m^2"), ValueError, "units.gK"),
        (lambda d: d["units"].pop("V_th"), ValueError, "V_th"),
        (lambda d: d.pop("units"), ValueError, "units"),
        (lambda d: d.update(extra=1), ValueError, "extra"),
        (lambda d: d.update(format="other"), ValueError, "format"),
        (lambda d: d["params"].update(C=-1.0), ValueError, "C"),
    ],
)
def test_bad_param_files_name_the_field(tmp_path, mutate, error, fragment):
    path = _write(tmp_path, mutate)
    with pytest.raises(error, match=fragment):
        hh_jax.load_params(path)


def test_invalid_json_is_a_value_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": ')
    with pytest.raises(ValueError, match="not valid JSON"):
        hh_jax.load_params(path)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = hh_jax.save_params(tmp_path / "p.json", hh_jax.HHParams())
    before = path.read_text()
    with pytest.raises(TypeError, match="params must be an HHParams"):
        hh_jax.save_params(path, {"gNa": 1.0})
    assert path.read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["p.json"]  # no temporary file left behind


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        hh_jax.save_params(tmp_path / "nope" / "p.json", hh_jax.HHParams())


def test_result_npz_round_trip(tmp_path):
    p = hh_jax.HHParams(gNa=jnp.array([110.0, 130.0]))
    r = hh_jax.simulate(p, 10.0, duration=30.0, dt=0.05, record=("V", "m", "INa"), record_every=2)
    path = hh_jax.save_result(tmp_path / "r.npz", r)
    q = hh_jax.load_result(path)
    for name in ("t", "V", "m", "INa", "spike_count", "spike_times", "finite"):
        np.testing.assert_array_equal(np.asarray(getattr(q, name)), np.asarray(getattr(r, name)), err_msg=name)
    for k in "Vmhn":
        np.testing.assert_array_equal(np.asarray(getattr(q.final_state, k)), np.asarray(getattr(r.final_state, k)))
    assert q.h is None and q.gK is None
    assert (q.duration, q.dt) == (r.duration, r.dt)
    np.testing.assert_array_equal(q.spike_table(), r.spike_table())


def test_result_with_missing_or_unknown_key_names_it(tmp_path):
    r = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=5.0, dt=0.05)
    path = hh_jax.save_result(tmp_path / "r.npz", r)
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    bad = dict(data)
    bad.pop("spike_count")
    np.savez(tmp_path / "missing.npz", **bad)
    with pytest.raises(ValueError, match="spike_count"):
        hh_jax.load_result(tmp_path / "missing.npz")
    np.savez(tmp_path / "unknown.npz", **data, voltage=data["V"])
    with pytest.raises(ValueError, match="voltage"):
        hh_jax.load_result(tmp_path / "unknown.npz")


def test_module_round_trip_and_mismatch(tmp_path):
    y = hh_jax.steady_state_at(jnp.linspace(-70.0, -60.0, 4))
    path = hh_jax.save_module(tmp_path / "y.eqx", y)
    z = hh_jax.load_module(path, hh_jax.steady_state_at(-65.0, shape=4))
    assert isinstance(z, hh_jax.HHState)
    for k in "Vmhn":
        np.testing.assert_array_equal(np.asarray(getattr(z, k)), np.asarray(getattr(y, k)))
    p = hh_jax.HHParams(gK=jnp.array([30.0, 36.0]))
    q = hh_jax.load_module(hh_jax.save_module(tmp_path / "p.eqx", p), hh_jax.HHParams(gK=jnp.zeros(2)))
    _same_params(p, q)
    with pytest.raises(ValueError, match="shape"):
        hh_jax.load_module(path, hh_jax.steady_state_at(-65.0, shape=3))
    with pytest.raises(ValueError, match="more leaves"):
        hh_jax.load_module(path, hh_jax.HHState(V=jnp.zeros(4), m=jnp.zeros(4), h=jnp.zeros(4), n=jnp.zeros(4)).V)
