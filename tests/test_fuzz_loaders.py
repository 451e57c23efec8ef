"""Fuzzing the file loaders: malformed content always gives a one-line, named error.

Loaders: `hh_jax.fit.load_recording` (CSV and NPZ), `hh_jax.load_params` (JSON),
`hh_jax.load_result` (NPZ), `hh_jax.load_module` (Equinox leaves). Each is fed (1) explicit
malformed files with the message they must give, and (2) hypothesis-generated mutations of a
valid file (deleted/added/retyped fields, random JSON or array values, NaN, truncation at a
random byte, random binary garbage). Every outcome must be either a valid object or a
`ValueError`/`TypeError` whose message is one line and which is **raised by hh_jax's own
code** (the raising frame is inside the ``hh_jax`` package), so that no NumPy/json/zipfile
internal error leaks out as the message. The CLI (`hh-jax fit --data BAD`) prints one line and
exits with status 2.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import hh_jax
import hh_jax.fit as F
from hh_jax._cli import main

PKG = os.path.dirname(os.path.abspath(hh_jax.__file__))
_DIR = tempfile.TemporaryDirectory(prefix="hh_jax_fuzz_")  # hypothesis reuses it across examples
fuzz = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _write(name, content) -> str:
    path = os.path.join(_DIR.name, name)
    with open(path, "wb" if isinstance(content, bytes) else "w", encoding=None if isinstance(content, bytes) else "utf-8") as f:
        f.write(content)
    return path


def _npz(name, **arrays) -> str:
    path = os.path.join(_DIR.name, name)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _npy(name, array) -> str:
    path = os.path.join(_DIR.name, name)
    with open(path, "wb") as f:
        np.save(f, array)
    return path


def _named_error(call):
    """Run `call`; return its value, or the one-line message of an hh_jax-raised error."""
    try:
        return call()
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert msg and len(msg.splitlines()) == 1, f"not one line: {msg!r}"
        assert "Traceback" not in msg
        origin = traceback.extract_tb(e.__traceback__)[-1].filename
        assert os.path.abspath(origin).startswith(PKG), f"{type(e).__name__} raised in {origin}: {msg}"
        return msg


# --- valid files to mutate -------------------------------------------------------------------

GOOD_PARAMS = hh_jax.params_to_dict(hh_jax.HHParams.hh1952())
_RESULT = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=0.5, dt=0.05, record=("V", "m"), max_spikes=2)
_GOOD_RESULT_PATH = os.path.join(_DIR.name, "good_result.npz")
hh_jax.save_result(_GOOD_RESULT_PATH, _RESULT)
with np.load(_GOOD_RESULT_PATH) as _z:
    GOOD_RESULT = {k: _z[k] for k in _z.files}
GOOD_RESULT_BYTES = pathlib.Path(_GOOD_RESULT_PATH).read_bytes()
GOOD_CSV = "time_ms,voltage_mV,current\n" + "".join(f"{0.1 * k:.1f},{-65 + k},{k % 3}\n" for k in range(8))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3),
    max_leaves=6,
)
garbage = st.binary(min_size=0, max_size=200)


# --- params JSON -----------------------------------------------------------------------------

@st.composite
def mutated_params(draw):
    d = json.loads(json.dumps(GOOD_PARAMS))
    for _ in range(draw(st.integers(1, 3))):
        sections = [d] + [d[k] for k in ("params", "units") if isinstance(d.get(k), dict)]
        where = draw(st.sampled_from(sections))
        op = draw(st.sampled_from(["delete", "add", "retype"]))
        key = draw(st.sampled_from(sorted(where) or ["x"]))
        if op == "delete":
            where.pop(key, None)
        elif op == "add":
            where[draw(st.text(min_size=1, max_size=6))] = draw(json_values)
        else:
            where[key] = draw(json_values)
    text = json.dumps(d)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text


@fuzz
@given(text=mutated_params())
def test_fuzzed_params_json_loads_or_names_the_problem(text):
    out = _named_error(lambda: hh_jax.load_params(_write("p.json", text)))
    assert isinstance(out, (str, hh_jax.HHParams))


@fuzz
@given(data=garbage)
def test_binary_garbage_params_json(data):
    assert isinstance(_named_error(lambda: hh_jax.load_params(_write("g.json", data))), (str, hh_jax.HHParams))


PARAM_CASES = [
    ("empty", "", r"p\.json: not valid JSON"),
    ("truncated", json.dumps(GOOD_PARAMS)[:-7], r"p\.json: not valid JSON"),
    ("binary", b"\x89PNG\r\n\x1a\n\xff", r"p\.json: not a UTF-8 text file"),
    ("latin-1 text", json.dumps(GOOD_PARAMS).replace("mV", "m\xe9V", 1).encode("latin-1"), r"not a UTF-8 text file"),
    ("deeply nested", "[" * 50000 + "]" * 50000, r"nested too deeply"),
    ("a list", "[1, 2]", r"parameter file must hold a JSON object, got list"),
    ("NaN value", json.dumps({**GOOD_PARAMS, "params": {**GOOD_PARAMS["params"], "gNa": float("nan")}}), r"HHParams\.gNa must be finite"),
    ("overflowing number", json.dumps(GOOD_PARAMS).replace('"C": 1.0', '"C": 1e999'), r"HHParams\.C must be finite"),
    ("string value", json.dumps({**GOOD_PARAMS, "params": {**GOOD_PARAMS["params"], "EK": "-77"}}), r"params\.EK: expected a number"),
    ("null section", json.dumps({**GOOD_PARAMS, "units": None}), r"units: expected a JSON object, got NoneType"),
    ("missing field", json.dumps({k: v for k, v in GOOD_PARAMS.items() if k != "version"}), r"parameter file: missing field\(s\) \['version'\]"),
    ("unit as a list", json.dumps({**GOOD_PARAMS, "units": {**GOOD_PARAMS["units"], "C": ["uF/cm^2"]}}), r"units\.C: expected 'uF/cm\^2'"),
]


@pytest.mark.parametrize("what, content, match", PARAM_CASES, ids=[c[0] for c in PARAM_CASES])
def test_malformed_params_json(what, content, match):
    with pytest.raises((ValueError, TypeError), match=match):
        hh_jax.load_params(_write("p.json", content))
    assert isinstance(_named_error(lambda: hh_jax.load_params(_write("p.json", content))), str)


def test_params_json_missing_file_or_folder_is_an_os_error_naming_the_path():
    with pytest.raises(FileNotFoundError, match=r"none\.json"):
        hh_jax.load_params(os.path.join(_DIR.name, "none.json"))
    with pytest.raises(IsADirectoryError, match=_DIR.name):
        hh_jax.load_params(_DIR.name)


# --- results NPZ -----------------------------------------------------------------------------

def _array(value) -> np.ndarray:
    try:
        a = np.asarray(value)
    except ValueError:  # ragged lists
        return np.zeros(0)
    return np.zeros(0) if a.dtype == object else a


arrays = st.one_of(
    st.builds(_array, json_values.filter(lambda v: not isinstance(v, dict))),
    st.builds(lambda s, d: (np.full(s, np.nan) if d[0] == "f" else np.zeros(s)).astype(d), st.lists(st.integers(0, 3), max_size=2).map(tuple), st.sampled_from(["f8", "f4", "i4", "?", "U2"])),
)


@st.composite
def mutated_result(draw):
    d = dict(GOOD_RESULT)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["delete", "add", "retype"]))
        key = draw(st.sampled_from(sorted(d) or ["x"]))
        if op == "delete":
            d.pop(key, None)
        elif op == "add":
            d[draw(st.text("abcxyz_.", min_size=1, max_size=6))] = draw(arrays)
        else:
            d[key] = draw(arrays)
    return d


@fuzz
@given(d=mutated_result())
def test_fuzzed_result_npz_loads_or_names_the_problem(d):
    out = _named_error(lambda: hh_jax.load_result(_npz("r.npz", **d)))
    if not isinstance(out, str):  # a valid file: its arrays are consistent
        assert out.t.ndim == 1 and out.final_state.V.shape == out.spike_count.shape


@fuzz
@given(cut=st.integers(0, len(GOOD_RESULT_BYTES) - 1), data=garbage)
def test_truncated_or_garbage_result_npz(cut, data):
    assert isinstance(_named_error(lambda: hh_jax.load_result(_write("t.npz", GOOD_RESULT_BYTES[:cut]))), str)
    assert isinstance(_named_error(lambda: hh_jax.load_result(_write("g.npz", data))), str)


RESULT_CASES = [
    ("empty file", lambda: _write("r.npz", b""), r"r\.npz: not a readable \.npz archive"),
    ("truncated", lambda: _write("r.npz", GOOD_RESULT_BYTES[:300]), r"r\.npz: not a readable \.npz archive"),
    ("a single .npy", lambda: _npy("r.npz", np.ones(3)), r"a single \.npy array"),
    ("pickled object array", lambda: _npz("r.npz", **{**GOOD_RESULT, "t": np.array([1, "a"], dtype=object)}), r"holds pickled/object data"),
    ("missing key", lambda: _npz("r.npz", **{k: v for k, v in GOOD_RESULT.items() if k != "spike_times"}), r"missing field\(s\) \['spike_times'\]"),
    ("unknown key", lambda: _npz("r.npz", **GOOD_RESULT, extra=np.ones(2)), r"unknown field\(s\) \['extra'\]"),
    ("NaN dt", lambda: _npz("r.npz", **{**GOOD_RESULT, "dt": np.asarray(np.nan)}), r"dt must be a positive finite number"),
    ("dt as text", lambda: _npz("r.npz", **{**GOOD_RESULT, "dt": np.asarray("0.05")}), r"dt must be a scalar"),
    ("version as an array", lambda: _npz("r.npz", **{**GOOD_RESULT, "version": np.ones(2)}), r"version must be a scalar"),
    ("trace as text", lambda: _npz("r.npz", **{**GOOD_RESULT, "V": np.asarray(["a"] * 11)}), r"V has dtype <U1; expected numbers"),
    ("trace of the wrong length", lambda: _npz("r.npz", **{**GOOD_RESULT, "m": np.ones(3)}), r"m has shape \(3,\), expected \(11,\)"),
    ("non-monotonic time", lambda: _npz("r.npz", **{**GOOD_RESULT, "t": GOOD_RESULT["t"][::-1]}), r"t must be a 1-D array of strictly increasing"),
    ("finite as text", lambda: _npz("r.npz", **{**GOOD_RESULT, "finite": np.asarray("yes")}), r"finite has dtype <U3; expected bool"),
]


@pytest.mark.parametrize("what, make, match", RESULT_CASES, ids=[c[0] for c in RESULT_CASES])
def test_malformed_result_npz(what, make, match):
    path = make()
    with pytest.raises(ValueError, match=match):
        hh_jax.load_result(path)
    assert isinstance(_named_error(lambda: hh_jax.load_result(path)), str)


# --- Equinox leaves --------------------------------------------------------------------------

_GOOD_MODULE = os.path.join(_DIR.name, "good.eqx")
hh_jax.save_module(_GOOD_MODULE, hh_jax.HHParams())
GOOD_MODULE_BYTES = pathlib.Path(_GOOD_MODULE).read_bytes()


@fuzz
@given(cut=st.integers(0, len(GOOD_MODULE_BYTES) - 1), data=garbage)
def test_truncated_or_garbage_module(cut, data):
    like = hh_jax.HHParams()
    assert isinstance(_named_error(lambda: hh_jax.load_module(_write("t.eqx", GOOD_MODULE_BYTES[:cut]), like)), str)
    out = _named_error(lambda: hh_jax.load_module(_write("g.eqx", data), like))
    assert isinstance(out, (str, hh_jax.HHParams))


# --- recordings: CSV and NPZ -----------------------------------------------------------------

cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-100, 100).map(str),
    st.sampled_from(["", " ", "nan", "inf", "abc", "1e999", "-", "time_ms", "voltage_mV", "current", "0x10", "1,5"]),
)


@st.composite
def fuzzed_csv(draw):
    lines = GOOD_CSV.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cell", "drop_line", "add_line", "header", "swap"]))
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if op == "cell" and lines:
            row = lines[i].split(",")
            row[draw(st.integers(0, len(row) - 1))] = draw(cells)
            lines[i] = ",".join(row)
        elif op == "drop_line" and lines:
            lines.pop(i)
        elif op == "add_line":
            lines.insert(i, ",".join(draw(st.lists(cells, max_size=4))))
        elif op == "header":
            lines[0] = ",".join(draw(st.lists(st.sampled_from(["time_ms", "voltage_mV", "current", "I", "x", ""]), max_size=4)))
        elif op == "swap" and len(lines) > 2:
            j = draw(st.integers(1, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    text = "\n".join(lines)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text


def _check_recording(rec):
    assert rec.t.ndim == 1 and rec.t.size >= 2 and rec.V.shape == rec.t.shape
    assert np.all(np.diff(rec.t) > 0) and np.all(np.isfinite(rec.t)) and np.all(np.isfinite(rec.V))
    assert rec.I is None or (rec.I.shape == rec.t.shape and np.all(np.isfinite(rec.I)))


@fuzz
@given(text=fuzzed_csv())
def test_fuzzed_csv_recording_loads_or_names_the_problem(text):
    out = _named_error(lambda: F.load_recording(_write("rec.csv", text)))
    if not isinstance(out, str):
        _check_recording(out)


@fuzz
@given(data=garbage, cut=st.integers(0, len(GOOD_RESULT_BYTES) - 1))
def test_garbage_csv_and_npz_recordings(data, cut):
    for name in ("g.csv", "g.npz"):
        out = _named_error(lambda: F.load_recording(_write(name, data)))
        if not isinstance(out, str):
            _check_recording(out)
    assert isinstance(_named_error(lambda: F.load_recording(_write("t.npz", GOOD_RESULT_BYTES[:cut]))), str)


@fuzz
@given(t=arrays, V=arrays, I=st.none() | arrays, t_name=st.sampled_from(["time_ms", "t", "time", "T"]))
def test_fuzzed_npz_recording_loads_or_names_the_problem(t, V, I, t_name):
    arrs = {t_name: t, "voltage_mV": V} | ({} if I is None else {"current": I})
    out = _named_error(lambda: F.load_recording(_npz("rec.npz", **arrs)))
    if not isinstance(out, str):
        _check_recording(out)


RECORDING_CASES = [
    ("rec.csv", b"\x00\xff\xfe\x89PNG", r"rec\.csv: not a UTF-8 text file"),
    ("rec.csv", "", r"rec\.csv: empty file"),
    ("rec.csv", "time_ms,voltage_mV\n0,-65\n1", r"truncated row at line 3"),
    ("rec.csv", "time_ms,voltage_mV\n0,-65\n1,inf\n", r"voltage_mV is NaN/inf/missing at line 3"),
    ("rec.csv", "time_ms,voltage_mV\n0,-65\n2,-64\n1,-63\n", r"time_ms is not strictly increasing at sample 2 \(2 then 1 ms\)"),
    ("rec.csv", "time_ms,voltage_mV\n0,-65\n0,-64\n", r"time_ms is not strictly increasing at sample 1"),
    ("rec.csv", "time_ms,voltage_mV,time_ms\n0,-65,0\n1,-64,1\n", r"column\(s\) \['time_ms'\] appear more than once"),
    ("rec.csv", "time_ms;voltage_mV\n0;-65\n1;-64\n", r"missing column 'time_ms' \(header is time_ms;voltage_mV\)"),
    ("rec.csv", "time_ms,voltage_mV\n0,-65\n", r"need at least 2 samples"),
    ("rec.npz", b"", r"rec\.npz: not a readable NPZ file"),
    ("rec.npz", b"PK\x03\x04", r"rec\.npz: not a readable NPZ file"),
]


@pytest.mark.parametrize("name, content, match", RECORDING_CASES, ids=[f"{c[0]}: {c[2][:30]}" for c in RECORDING_CASES])
def test_malformed_recording_files(name, content, match):
    with pytest.raises(ValueError, match=match):
        F.load_recording(_write(name, content))


NPZ_RECORDING_CASES = [
    ({"time_ms": np.array([1, "a"], dtype=object), "voltage_mV": np.ones(2)}, r"holds pickled/object data"),
    ({"time_ms": np.array(["0", "1"]), "voltage_mV": np.ones(2)}, r"array 'time_ms' must be 1-D real numbers, got <U1"),
    ({"time_ms": np.arange(3) + 0j, "voltage_mV": np.ones(3)}, r"array 'time_ms' must be 1-D real numbers, got complex128"),
    ({"time_ms": np.arange(4.0).reshape(2, 2), "voltage_mV": np.ones(4)}, r"got float64 of shape \(2, 2\)"),
    ({"time_ms": np.arange(3.0), "voltage_mV": np.array([True, False, True])}, r"array 'voltage_mV' must be 1-D real numbers, got bool"),
    ({"time_ms": np.arange(3.0), "voltage_mV": np.ones(4)}, r"voltage_mV has 4 samples but time_ms has 3"),
    ({"time_ms": np.arange(3.0), "voltage_mV": np.array([1.0, np.nan, 2.0])}, r"voltage_mV is NaN/non-finite at sample 1"),
    ({"time_ms": np.zeros(0), "voltage_mV": np.zeros(0)}, r"no data rows"),
    ({"voltage_mV": np.ones(3)}, r"missing array 'time_ms'"),
]


@pytest.mark.parametrize("arrs, match", NPZ_RECORDING_CASES, ids=[c[1][:30] for c in NPZ_RECORDING_CASES])
def test_malformed_npz_recordings(arrs, match):
    with pytest.raises(ValueError, match=match):
        F.load_recording(_npz("rec.npz", **arrs))


def test_recording_path_that_is_a_folder():
    os.makedirs(os.path.join(_DIR.name, "folder.csv"), exist_ok=True)
    with pytest.raises(ValueError, match=r"folder\.csv: not a file"):
        F.load_recording(os.path.join(_DIR.name, "folder.csv"))


# --- the CLI ---------------------------------------------------------------------------------

CLI_BAD = [
    ("garbage.csv", b"\x00\xff\xfe", "not a UTF-8 text file"),
    ("trunc.csv", "time_ms,voltage_mV,current\n0,-65,1\n1,-64", "truncated row at line 3"),
    ("order.csv", "time_ms,voltage_mV\n0,-65\n2,-64\n1,-63\n", "not strictly increasing"),
    ("empty.npz", b"", "not a readable NPZ file"),
    ("obj.npz", None, "holds pickled/object data"),
    ("none.csv", None, "no such file"),
]


@pytest.mark.parametrize("name, content, match", CLI_BAD, ids=[c[0] for c in CLI_BAD])
def test_cli_fit_bad_data_prints_one_line_and_exits_2(name, content, match, capsys):
    if name == "obj.npz":
        path = _npz(name, time_ms=np.array([1, "a"], dtype=object), voltage_mV=np.ones(2))
    else:
        path = os.path.join(_DIR.name, name) if content is None else _write(name, content)
    out = os.path.join(_DIR.name, "cli_out")
    assert main(["fit", "--data", path, "--protocol", "10", "--out", out, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hh-jax: error: ") and match in err and name in err, err
    assert not os.path.exists(out)  # nothing written


def test_cli_entry_point_bad_data_exit_status_2():
    """The same through the real ``python -m hh_jax`` process (stderr is exactly one line)."""
    path = _write("cli.csv", "time_ms,voltage_mV\n0,-65\n1,nan\n")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(PKG), "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, "-m", "hh_jax", "fit", "--data", path, "--protocol", "10",
                        "--out", os.path.join(_DIR.name, "o")], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and "Warning" not in ln and "warn(" not in ln]
    assert lines == ["hh-jax: error: cli.csv: voltage_mV is NaN/inf/missing at line 3."], p.stderr
