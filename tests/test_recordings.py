"""Real recordings (issue 15): NWB and ABF files written with pynwb and pyabf, loaded in physical
units, exported as NWB, and fitted through ``hh-jax fit``."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import hh_jax
import hh_jax.fit as hf
from hh_jax._cli import main

import recording_files as rf

pytest.importorskip("pynwb")
pytest.importorskip("pyabf")


def test_nwb_units_sweeps_and_round_trip_are_exact(tmp_path):
    path = tmp_path / "cell.nwb"
    t, V, I_pA = rf.write_nwb(path)  # int16 counts, conversion, offset, junction potential
    rec = hf.load_recording(path, sweeps=[12, 13, 14], area_um2=rf.AREA_UM2, liquid_junction_mV=rf.LJP_MV)
    assert rec.sweeps == (12, 13, 14) and rec.V.shape == (t.size, 3) and rec.area_um2 == rf.AREA_UM2
    np.testing.assert_allclose(rec.t, t, rtol=1e-12, atol=0)
    np.testing.assert_allclose(rec.V, V, rtol=0, atol=1e-12)  # counts · 10 µV − 20 mV − LJP, in mV
    np.testing.assert_array_equal(rec.I_pA, I_pA)  # counts · 0.5 pA
    np.testing.assert_allclose(rec.I, I_pA * 100.0 / rf.AREA_UM2, rtol=1e-15)
    # the capacitance gives the same density (C = 1 uF/cm^2: 20 pF <-> 2000 um^2)
    by_c = hf.load_nwb(path, capacitance_pf=rf.AREA_UM2 * 0.01, liquid_junction_mV=rf.LJP_MV)
    np.testing.assert_allclose(by_c.I, rec.I, rtol=1e-15)
    # NWB -> recording -> NWB -> recording: the same numbers
    hf.save_recording(tmp_path / "again.nwb", rec)
    back = hf.load_nwb(tmp_path / "again.nwb")
    for name in ("t", "V", "I", "I_pA"):
        np.testing.assert_array_equal(getattr(back, name), getattr(rec, name), err_msg=name)
    assert back.sweeps == rec.sweeps and back.area_um2 == rec.area_um2
    # a subset, a window, no area (whole-cell current only), and no table: matched by sweep_number
    rf.write_nwb(tmp_path / "plain.nwb", table=False, duration=20.0)
    sub = hf.load_nwb(tmp_path / "plain.nwb", sweeps=[14], window=(2.0, 10.0))
    assert sub.sweeps == (14,) and sub.I is None and sub.V.shape == (161, 1)
    assert sub.t[0] == pytest.approx(2.0) and sub.t[-1] == pytest.approx(10.0)
    volts = hf.load_nwb(tmp_path / "plain.nwb", stimulus=False)
    assert volts.I is None and volts.I_pA is None and volts.V.shape[1] == 3


def test_nwb_unit_strings_are_read(tmp_path):
    path = tmp_path / "mv.nwb"
    _, V, _ = rf.write_nwb(path, duration=12.0, table=False)
    rf.set_nwb_unit(path, "cc13", "mV", conversion=1e-2)  # counts of 0.01 mV, offset -0.02 mV
    rec = hf.load_nwb(path, sweeps=[13], liquid_junction_mV=0.0)
    np.testing.assert_allclose(rec.V[:, 0], V[:, 1] + rf.LJP_MV + 20.0 - 0.02, rtol=0, atol=1e-12)


def test_abf_units_sweeps_and_command_waveform(tmp_path):
    path = tmp_path / "cell.abf"
    t, V, I_pA = rf.write_abf(path)  # ABF1, 16-bit samples, the step family in the epoch table
    rec = hf.load_recording(path, area_um2=rf.AREA_UM2, liquid_junction_mV=rf.LJP_MV)
    assert rec.sweeps == (0, 1, 2) and rec.V.shape == (t.size, 3)
    np.testing.assert_allclose(rec.t, t, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(rec.V, V)  # what pyabf reads, minus the junction potential
    np.testing.assert_array_equal(rec.I_pA, I_pA)
    assert set(np.unique(I_pA[:, 2])) == {0.0, 300.0}  # 15 uA/cm^2 on 2000 um^2
    np.testing.assert_allclose(rec.I, I_pA * 100.0 / rf.AREA_UM2, rtol=1e-15)
    # within the file's 16-bit resolution of the simulated cell
    sim = rf.simulate_cell(I_pA * 100.0 / rf.AREA_UM2, dt=0.05)
    assert np.max(np.abs(rec.V - sim)) < 2.0  # noise 0.3 mV, 5 sigma and a quantum


def test_result_exports_as_nwb_and_reads_back(tmp_path):
    import pynwb

    p = hh_jax.HHParams.hh1952()
    stim = hh_jax.Step(np.array([5.0, 10.0]), onset=2.0)
    r = hh_jax.simulate(p, stim, duration=10.0, dt=0.025)
    path = tmp_path / "run.nwb"
    hh_jax.save_result(path, r, format="nwb", stimulus=stim, params=p, area_um2=1500.0)
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        resp, st = nwb.acquisition["response_1"], nwb.stimulus["stimulus_1"]
        assert (resp.unit, resp.conversion, st.unit, st.conversion) == ("volts", 1e-3, "amperes", 1e-12)
        assert resp.rate == pytest.approx(40000.0) and len(nwb.intracellular_recordings) == 2
        meta = json.loads(nwb.notes)["hh_jax"]
        assert meta["params"]["params"]["gNa"] == 120.0 and meta["area_um2"] == 1500.0
    rec = hf.load_nwb(path)  # the area comes from the file
    np.testing.assert_array_equal(rec.V, np.asarray(r.V))
    want = np.where(np.asarray(r.t)[:, None] >= 2.0, [5.0, 10.0], 0.0)
    np.testing.assert_allclose(rec.I, want, rtol=1e-14, atol=0)
    np.testing.assert_allclose(rec.t, np.asarray(r.t), rtol=1e-12, atol=1e-12)
    # the simulate CLI writes it too, in its output folder
    out = tmp_path / "out"
    assert main(["simulate", "--duration", "2", "--n", "2", "--nwb", "--no-plot", "--out", str(out)]) == 0
    cli = hf.load_nwb(out / "result.nwb")
    np.testing.assert_array_equal(cli.V, np.load(out / "result.npz")["V"])
    assert np.all(cli.I == 10.0) and "result.nwb" in (out / "manifest.json").read_text()
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


def test_importing_hh_jax_does_not_import_the_data_extra():
    code = "import sys, hh_jax, hh_jax.fit; print(sorted(m for m in ('pynwb', 'pyabf', 'h5py') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_missing_extra_is_one_line_saying_what_to_install(tmp_path, monkeypatch):
    rf.write_nwb(tmp_path / "x.nwb", duration=6.0)
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb raises ImportError
    with pytest.raises(ImportError) as e:
        hf.load_nwb(tmp_path / "x.nwb")
    assert "\n" not in str(e.value) and "pip install 'hh_jax[data]'" in str(e.value)


def test_fitted_area_converts_a_fit_of_c():
    p, area = hf.fitted_area(hh_jax.HHParams.hh1952().replace(C=0.5, gNa=60.0), reference_area_um2=4000.0)
    assert area == 2000.0 and float(p.C) == 1.0 and float(p.gNa) == 120.0 and float(p.gK) == 72.0
