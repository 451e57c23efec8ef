"""`hh-jax fi` / `hh-jax bifurcation` and the dynamics plots."""

import csv
import os

import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
import hh_jax.analysis as A
from hh_jax._cli import main


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_cli_bifurcation_writes_csv_and_png(tmp_path, capsys):
    out = str(tmp_path / "bif")
    rc = main(["bifurcation", "--preset", "hh1952", "--num", "41", "--i-max", "200", "--no-cycles", "--out", out])
    assert rc == 0
    hopf = [float(r["I_uA_cm2"]) for r in _rows(os.path.join(out, "hopf.csv"))]
    np.testing.assert_allclose(hopf, [9.7754, 154.5224], atol=1e-3)
    eq = _rows(os.path.join(out, "equilibria.csv"))
    assert len(eq) == 41 and eq[0]["class"] == "stable focus"
    assert abs(float(eq[0]["V_mV"]) + 64.996) < 1e-3
    assert os.path.getsize(os.path.join(out, "bifurcation.png")) > 1000
    assert "9.7754" in capsys.readouterr().out


def test_cli_fi_writes_csv_and_png(tmp_path):
    out = str(tmp_path / "fi")
    rc = main(["fi", "--preset", "hh1952", "--i-min", "8", "--i-max", "10", "--num", "2",
               "--transient", "100", "--window", "100", "--out", out])
    assert rc == 0
    rows = _rows(os.path.join(out, "fi.csv"))
    assert [float(r["I_uA_cm2"]) for r in rows] == [8.0, 10.0]
    assert float(rows[0]["rate_from_equilibrium_Hz"]) == 0.0  # bistable: quiet from rest at 8
    assert float(rows[0]["rate_from_spiking_Hz"]) > 55.0
    assert abs(float(rows[1]["rate_from_rest_Hz"]) - 68.3) < 0.2
    assert os.path.getsize(os.path.join(out, "fi.png")) > 1000


@pytest.mark.parametrize(
    "argv, word",
    [
        (["fi", "--i-min", "5", "--i-max", "1"], "--i-min"),
        (["fi", "--num", "1"], "--num"),
        (["fi", "--dt", "-1"], "--dt"),
        (["fi", "--preset", "nope"], "preset"),
        (["bifurcation", "--i-max", "nan"], "--i-max"),
        (["bifurcation", "--cycle-step", "0"], "--cycle-step"),
    ],
)
def test_cli_bad_arguments_exit_2(argv, word, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        rc = main(argv + ["--out", str(tmp_path)])
        raise SystemExit(rc)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and word in err


def test_plots_return_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import hh_jax.plot as hp

    p = hh_jax.HHParams.hh1952()
    b = A.equilibrium_branch(p, np.linspace(0.0, 20.0, 5))
    ax = hp.bifurcation(b, hopf=jnp.array([9.775]))
    assert ax.get_xlabel().startswith("I") and len(ax.lines) >= 3
    ax = hp.spectrum(b.eigenvalues, color="k")
    assert len(ax.collections) == 1
    c = A.FICurve(I=jnp.array([1.0, 2.0]), rate=jnp.array([0.0, 50.0]), spike_count=jnp.array([0, 10]))
    assert hp.fi(c, label="x").get_ylabel() == "firing rate (Hz)"
    pp = A.phase_plane(p, 10.0, hh_jax.steady_state_at(jnp.array([-65.0, -50.0])), duration=5.0)
    ax = hp.phase_portrait(pp, cycle=hh_jax.steady_state_at(jnp.linspace(-70.0, 20.0, 5)))
    assert ax.get_xlabel() == "V (mV)"
    plt.close("all")
