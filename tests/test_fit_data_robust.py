"""Recordings that are implausible for their units, and the loader messages (issue 12).

A recording in volts labelled ``voltage_mV`` used to "fit" gNa ≈ 2000; a recording spanning
1e12 ms or holding ±1e308 crashed the resampling; a protocol outside the recording fitted zero
current; a CSV exported by Excel (UTF-8 byte-order mark) was refused; NPZ messages quoted NumPy
and zipfile internals. Each now loads, or gives one line naming the file, the problem and a fix.
"""

import zipfile
from pathlib import Path

import numpy as np
import pytest

import hh_jax.fit as hf
from hh_jax._cli import main

T = np.round(np.arange(0.0, 10.05, 0.1), 10)
V_MV = -65.0 + 20.0 * np.exp(-(((T - 5.0) / 0.5) ** 2))


def _csv(tmp_path, name, t, V, I=None, *, bom=False):
    path = tmp_path / name
    head = "time_ms,voltage_mV" + (",current" if I is not None else "")
    rows = "".join(f"{a!r},{b!r}" + (f",{float(I[k])!r}" if I is not None else "") + "\n"
                   for k, (a, b) in enumerate(zip(t.tolist(), V.tolist())))
    path.write_text(("\ufeff" if bom else "") + head + "\n" + rows, encoding="utf-8")
    return str(path)


def _npz(tmp_path, name, **arrays):
    path = str(tmp_path / name)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("fmt", ["csv", "npz"])
@pytest.mark.parametrize(
    "what, t, V, I, match",
    [
        ("volts labelled mV", T, V_MV / 1000.0, None, r"looks like volts, not mV; multiply the column by 1000"),
        ("microvolts", T, V_MV * 1000.0, None, r"voltage_mV is -6\.5e\+04 at sample 0, outside the plausible range \[-200, 200\] mV"),
        ("V of 1e308", T, np.where(T > 5, 1e308, -65.0), None, r"outside the plausible range"),
        ("span of 1e12 ms", T * 1e11, V_MV, None, r"time_ms spans 1e\+12 ms .*more than 1e\+08 ms"),
        ("times of +-1e308", np.array([-1e308, 0.0, 1e308]), np.array([-65.0, -64.0, -63.0]), None, r"time_ms spans inf ms"),
        ("current of 1e308", T, V_MV, np.where(T > 5, 1e308, 0.0), r"current is 1e\+308 at sample 51, outside ±10000 uA/cm\^2"),
    ],
)
def test_implausible_recordings_are_refused_naming_the_file(tmp_path, fmt, what, t, V, I, match):
    if fmt == "csv":
        path = _csv(tmp_path, "rec.csv", t, V, I)
    else:
        path = _npz(tmp_path, "rec.npz", time_ms=t, voltage_mV=V, **({} if I is None else {"current": I}))
    with pytest.raises(ValueError, match=match) as e:
        hf.load_recording(path)
    msg = str(e.value)
    assert msg.startswith(f"rec.{fmt}: ") and "\n" not in msg


def test_plausible_recording_still_loads(tmp_path):
    rec = hf.load_recording(_csv(tmp_path, "ok.csv", T, V_MV, 0.0 * T + 10.0))
    np.testing.assert_array_equal(rec.V, V_MV)


def test_csv_with_excel_byte_order_mark_loads(tmp_path):
    plain = hf.load_recording(_csv(tmp_path, "plain.csv", T, V_MV))
    bom = hf.load_recording(_csv(tmp_path, "excel.csv", T, V_MV, bom=True))
    np.testing.assert_array_equal(bom.t, plain.t)
    np.testing.assert_array_equal(bom.V, plain.V)


def test_resample_refuses_a_grid_that_cannot_fit():
    rec = hf.Recording(t=np.array([0.0, 1e7]), V=np.array([-65.0, -65.0]))
    with pytest.raises(ValueError, match=r"resample: dt = 1e-05 ms over 1e\+07 ms gives 1e\+12 samples"):
        rec.resample(1e-5)


def _zip_with(tmp_path, name, members):
    path = str(tmp_path / name)
    with zipfile.ZipFile(path, "w") as z:
        for k, data in members.items():
            z.writestr(k, data)
    return path


def _damaged(tmp_path):
    good = _npz(tmp_path, "good.npz", time_ms=T, voltage_mV=V_MV)
    data = bytearray(Path(good).read_bytes())
    data[100] ^= 0xFF  # inside the first member's data: a CRC error on reading it
    path = tmp_path / "crc.npz"
    path.write_bytes(bytes(data))
    return str(path)


def _truncated(tmp_path):
    good = _npz(tmp_path, "good.npz", time_ms=T, voltage_mV=V_MV)
    data = Path(good).read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: len(data) // 2])
    return str(path)


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


NPZ_CASES = [
    ("empty", lambda p: _write(p, "e.npz", b""), r"e\.npz: not a readable NPZ file: empty file"),
    ("text", lambda p: _write(p, "x.npz", b"time_ms,voltage_mV\n0,1\n"), r"x\.npz: not a readable NPZ file: no zip signature"),
    ("single .npy", lambda p: _write(p, "s.npz", _npy_bytes()), r"s\.npz: not a readable NPZ file: a single \.npy array"),
    ("truncated zip", _truncated, r"cut\.npz: not a readable NPZ file: the zip archive is damaged or truncated"),
    ("bad CRC", _damaged, r"crc\.npz: array 'time_ms' is not a readable \.npy array \(damaged archive member\)"),
    ("pickled object array", lambda p: _npz(p, "o.npz", time_ms=np.array([0, "a"], dtype=object), voltage_mV=np.ones(2)), r"o\.npz: array 'time_ms' holds pickled/object data, which is never loaded"),
    ("missing key", lambda p: _npz(p, "m.npz", time_ms=T), r"m\.npz: missing array 'voltage_mV' \(or 'V', 'voltage'\); found \['time_ms'\]"),
    ("member not .npy", lambda p: _zip_with(p, "z.npz", {"time_ms": b"0,1", "voltage_mV.npy": b"x"}), r"z\.npz: member 'time_ms' is not a \.npy array"),
]


def _npy_bytes():
    import io

    buf = io.BytesIO()
    np.save(buf, np.arange(3.0))
    return buf.getvalue()


@pytest.mark.parametrize("what, make, match", NPZ_CASES, ids=[c[0] for c in NPZ_CASES])
def test_npz_messages_name_the_file_and_the_expected_arrays(tmp_path, what, make, match):
    with pytest.raises(ValueError, match=match) as e:
        hf.load_recording(make(tmp_path))
    msg = str(e.value)
    assert "\n" not in msg
    for internal in ("BadZipFile", "EOFError", "allow_pickle", "Object arrays", "CRC-32", "No data left"):
        assert internal not in msg, msg
    if what not in ("pickled object array", "bad CRC"):
        assert "time_ms, voltage_mV" in msg, msg


def _fit(tmp_path, capsys, data, protocol="10"):
    out = tmp_path / "out"
    code = main(["fit", "--data", data, "--protocol", protocol, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    return code, err, out


def test_cli_fit_refuses_volts_labelled_mV(tmp_path, capsys):
    code, err, out = _fit(tmp_path, capsys, _csv(tmp_path, "volts.csv", T, V_MV / 1000.0))
    assert code == 2 and err.count("\n") == 1 and "volts.csv" in err and "volts" in err, err
    assert not out.exists()


def test_cli_fit_refuses_a_protocol_outside_the_recording(tmp_path, capsys):
    code, err, out = _fit(tmp_path, capsys, _csv(tmp_path, "rec.csv", T, V_MV), protocol="10@500-600")
    assert code == 2 and err.count("\n") == 1, err
    assert "500-600 ms" in err and "0-10 ms" in err and "--protocol" in err, err
    assert not out.exists()


def test_cli_fit_refuses_a_recording_spanning_1e12_ms(tmp_path, capsys):
    code, err, out = _fit(tmp_path, capsys, _csv(tmp_path, "long.csv", T * 1e11, V_MV))
    assert code == 2 and err.count("\n") == 1 and "long.csv" in err and "time_ms spans" in err, err
    assert not out.exists()
