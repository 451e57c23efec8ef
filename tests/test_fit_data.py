"""Loading recordings: formats, resampling, one-line errors; the ``hh-jax fit`` round trip."""

import json
import os

import jax
import numpy as np
import pytest

import hh_jax
import hh_jax.fit as hf
from hh_jax._cli import main


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_csv_and_npz_load_and_resample(tmp_path):
    t = np.linspace(0.0, 10.0, 41)
    V = -65.0 + np.sin(t)
    I = 2.0 * t
    csv = _write(tmp_path, "r.csv", "time_ms,voltage_mV,current\n" +
                 "".join(f"{float(a)!r},{float(b)!r},{float(c)!r}\n" for a, b, c in zip(t, V, I)))
    npz = str(tmp_path / "r.npz")
    np.savez(npz, time_ms=t, voltage_mV=V)
    rc, rn = hf.load_recording(csv), hf.load_recording(npz)
    np.testing.assert_array_equal(rc.V, V)
    np.testing.assert_array_equal(rc.I, I)
    assert rn.I is None
    r = rc.resample(0.1)
    assert r.t.shape == (101,)
    np.testing.assert_allclose(r.t[-1], 10.0)
    # linear interpolation is exact for the linear current, and O(h²) for the sine
    np.testing.assert_allclose(r.I, 2.0 * r.t, atol=1e-12)
    assert np.max(np.abs(r.V - (-65.0 + np.sin(r.t)))) < 0.25**2 / 8 * 1.01


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("missing.csv", "time_ms,current\n0,1\n1,2\n", "missing column 'voltage_mV'"),
        ("onecol.csv", "0\n1\n2\n", "missing column"),
        ("order.csv", "time_ms,voltage_mV\n0,-65\n1,-64\n0.5,-63\n", "not strictly increasing"),
        ("nan.csv", "time_ms,voltage_mV\n0,-65\n1,nan\n2,-63\n", "voltage_mV is NaN.*line 3"),
        ("blank.csv", "time_ms,voltage_mV\n0,-65\n1,\n2,-63\n", "voltage_mV is NaN"),
        ("empty.csv", "", "empty file"),
        ("header.csv", "time_ms,voltage_mV\n", "no data rows"),
        ("trunc.csv", "time_ms,voltage_mV,current\n0,-65,1\n1,-64", "truncated row at line 3"),
        ("text.csv", "time_ms,voltage_mV\n0,-65\n1,abc\n", "not a number"),
        ("bad.npz", "not a zip", "not a readable NPZ"),
        ("x.mat", "1", "unknown format"),
    ],
)
def test_malformed_files_give_one_line_errors(tmp_path, name, text, match):
    path = _write(tmp_path, name, text)
    with pytest.raises(ValueError, match=match) as e:
        hf.load_recording(path)
    msg = str(e.value)
    assert "\n" not in msg and name in msg


def test_npz_missing_array(tmp_path):
    p = str(tmp_path / "m.npz")
    np.savez(p, time_ms=np.arange(3.0))
    with pytest.raises(ValueError, match="missing array 'voltage_mV'"):
        hf.load_recording(p)


def test_cli_fit_round_trip(tmp_path, capsys):
    truth = hh_jax.HHParams.hh1952()
    r = hh_jax.simulate(truth, hh_jax.Step(15.0), duration=10.0, dt=0.05)
    V = np.asarray(r.V) + 0.5 * np.asarray(jax.random.normal(jax.random.key(0), r.V.shape))
    csv = _write(tmp_path, "rec.csv", "time_ms,voltage_mV\n" +
                 "".join(f"{a:.4f},{b:.5f}\n" for a, b in zip(np.asarray(r.t), V)))
    out = str(tmp_path / "out")
    status = main(["fit", "--data", csv, "--protocol", "15@0-10", "--fit", "gNa,gK", "--dt", "0.05",
                   "--starts", "2", "--steps", "15", "--out", out, "--no-progress"])
    assert status == 0
    res = json.load(open(os.path.join(out, "params.json")))
    # a short run: near the truth, with residuals near the noise level (a miss gives 100s of mV²)
    assert abs(res["fitted"]["gNa"] / 120.0 - 1) < 0.15 and abs(res["fitted"]["gK"] / 36.0 - 1) < 0.15
    assert res["loss_mV2"] < 2.0
    assert os.path.getsize(os.path.join(out, "fit.png")) > 1000
    hist = np.loadtxt(os.path.join(out, "loss.csv"), delimiter=",", skiprows=1)
    assert hist.shape == (15, 2)
    # bad input: one line on stderr, exit status 2
    capsys.readouterr()
    for argv in (["--data", str(tmp_path / "nope.csv"), "--protocol", "10"],
                 ["--data", csv, "--protocol", "ten@0-5"],
                 ["--data", csv, "--protocol", "file"],
                 ["--data", csv, "--protocol", "10", "--fit", "gNa,V_th"]):
        assert main(["fit", *argv, "--out", out, "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("hh-jax: error:") and err.count("\n") == 1
