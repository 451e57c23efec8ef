"""Bad-input rows for save/load (`hh_jax._io`), the subpackages `analysis`, `fit`, `plot`, and
long/large runs (`simulate_chunked`, `simulate_sharded`, `use_cpu_devices`).

Imported by tests/test_bad_input.py, which runs them and renders them into docs/bad_input.md.
Same layout as its `ROWS`: (public name, invalid input, callable, exception type, regex the
message must match). Subpackage names are written ``analysis.X``, ``fit.X``, ``plot.X``. Every
row fails before any simulation is compiled (the few that need a `SimulationResult` share one
cached 1 ms run).
"""

import functools
import json
import os
import tempfile
import warnings

import diffrax
import jax
import numpy as np

import hh_jax
import hh_jax.analysis as A
import hh_jax.fit as F
import hh_jax.plot as Pl
from hh_jax import HHParams as P

NAN = float("nan")
Y = hh_jax.HHState(V=-65.0, m=0.05, h=0.6, n=0.32)
_DIR = tempfile.TemporaryDirectory(prefix="hh_jax_bad_input_")


def _file(name: str, content) -> str:
    path = os.path.join(_DIR.name, name)
    with open(path, "wb" if isinstance(content, bytes) else "w") as f:
        f.write(content)
    return path


def _pdict(**change):
    d = hh_jax.params_to_dict(P())
    d["params"] = {**d["params"], **change.pop("params", {})}
    d["units"] = {**d["units"], **change.pop("units", {})}
    return {**d, **change}


def _drop(section, key):
    d = _pdict()
    del d[section][key]
    return d


@functools.cache
def _result():
    return hh_jax.simulate(P(), 10.0, duration=1.0, dt=0.01)


def _saved(name, module):
    path = os.path.join(_DIR.name, name)
    hh_jax.save_module(path, module)
    return path


def _npz_without(key):
    path = os.path.join(_DIR.name, "r.npz")
    hh_jax.save_result(path, _result())
    with np.load(path) as z:
        data = {k: z[k] for k in z.files if k != key}
    np.savez(path, **data)
    return path


_SPACE = lambda: F.ParamSpace(P(), ["gNa"])  # noqa: E731
_LOSS = lambda p: p.gNa  # noqa: E731
_Y2 = lambda: hh_jax.steady_state_at(np.array([-65.0, -60.0]))  # noqa: E731

IO_ROWS = [
    ("params_to_dict", "params not HHParams", lambda: hh_jax.params_to_dict({"gNa": 1.0}), TypeError, r"params must be an HHParams, got dict"),
    ("params_from_dict", "not a dict", lambda: hh_jax.params_from_dict([1.0]), TypeError, r"parameter file must hold a JSON object, got list"),
    ("params_from_dict", "missing field", lambda: hh_jax.params_from_dict(_drop("params", "gK")), ValueError, r"params: missing field\(s\) \['gK'\]"),
    ("params_from_dict", "unknown field", lambda: hh_jax.params_from_dict(_pdict(params={"gX": 1.0})), ValueError, r"params: unknown field\(s\) \['gX'\]"),
    ("params_from_dict", "unknown top-level key", lambda: hh_jax.params_from_dict(_pdict(extra=1)), ValueError, r"parameter file: unknown field\(s\) \['extra'\]"),
    ("params_from_dict", "string value", lambda: hh_jax.params_from_dict(_pdict(params={"C": "1.0"})), TypeError, r"params\.C: expected a number or a list of numbers, got '1\.0'"),
    ("params_from_dict", "boolean value", lambda: hh_jax.params_from_dict(_pdict(params={"gL": True})), TypeError, r"params\.gL: expected a number"),
    ("params_from_dict", "ragged list", lambda: hh_jax.params_from_dict(_pdict(params={"gNa": [[1.0], [1.0, 2.0]]})), TypeError, r"params\.gNa: not a rectangular array"),
    ("params_from_dict", "value out of range", lambda: hh_jax.params_from_dict(_pdict(params={"C": -1.0})), ValueError, r"HHParams\.C .*must be > 0"),
    ("params_from_dict", "populations that do not broadcast", lambda: hh_jax.params_from_dict(_pdict(params={"gNa": [1.0, 2.0], "gK": [1.0, 2.0, 3.0]})), ValueError, r"do not broadcast together: gNa\(2,\), gK\(3,\)"),
    ("params_from_dict", "wrong unit", lambda: hh_jax.params_from_dict(_pdict(units={"gNa": "S/m^2"})), ValueError, r"units\.gNa: expected 'mS/cm\^2', got 'S/m\^2'"),
    ("params_from_dict", "wrong format", lambda: hh_jax.params_from_dict(_pdict(format="x")), ValueError, r"format: expected 'hh_jax\.HHParams', got 'x'"),
    ("params_from_dict", "wrong version", lambda: hh_jax.params_from_dict(_pdict(version=2)), ValueError, r"version: expected 1, got 2"),
    ("save_params", "params not HHParams", lambda: hh_jax.save_params(os.path.join(_DIR.name, "p.json"), "hh1952"), TypeError, r"params must be an HHParams, got str"),
    ("save_params", "folder does not exist", lambda: hh_jax.save_params(os.path.join(_DIR.name, "no", "p.json"), P()), ValueError, r"path: folder '.*no' does not exist"),
    ("save_result", "result not a SimulationResult", lambda: hh_jax.save_result(os.path.join(_DIR.name, "r.npz"), P()), TypeError, r"result must be a SimulationResult, got HHParams"),
    ("save_module", "folder does not exist", lambda: hh_jax.save_module(os.path.join(_DIR.name, "no", "m.eqx"), P()), ValueError, r"path: folder '.*no' does not exist"),
    ("load_params", "no such file", lambda: hh_jax.load_params(os.path.join(_DIR.name, "none.json")), FileNotFoundError, r"No such file or directory: '.*none\.json'"),
    ("load_params", "invalid JSON", lambda: hh_jax.load_params(_file("bad.json", '{"format": ')), ValueError, r"bad\.json: not valid JSON \(Expecting value: line 1"),
    ("load_params", "binary file", lambda: hh_jax.load_params(_file("bin.json", b"\x89PNG\xff\x00")), ValueError, r"bin\.json: not a UTF-8 text file"),
    ("load_params", "NaN value (JSON extension)", lambda: hh_jax.load_params(_file("nan.json", json.dumps(_pdict(params={"gK": NAN})))), ValueError, r"HHParams\.gK must be finite, got nan"),
    ("load_result", "not an .npz archive", lambda: hh_jax.load_result(_file("bad.npz", b"PK\x03\x04 truncated")), ValueError, r"bad\.npz: not a readable \.npz archive"),
    ("load_result", "missing key", lambda: hh_jax.load_result(_npz_without("dt")), ValueError, r"r\.npz: missing field\(s\) \['dt'\]"),
    ("load_module", "file shorter than `like`", lambda: hh_jax.load_module(_file("short.eqx", b""), P()), ValueError, r"short\.eqx: .*file ends early"),
    ("load_module", "file with more leaves than `like`", lambda: hh_jax.load_module(_saved("y.eqx", P()), Y), ValueError, r"y\.eqx: file holds more leaves than `like`"),
    ("load_module", "leaf shape differs from `like`", lambda: hh_jax.load_module(_saved("y1.eqx", Y), hh_jax.steady_state_at(shape=3)), ValueError, r"y1\.eqx: .*path \(GetAttrKey\(name='V'\),\) has changed shape from \(3,\)"),
]

ANALYSIS_ROWS = [
    ("analysis.equilibrium_current", "params not HHParams", lambda: A.equilibrium_current("hh1952", -65.0), TypeError, r"equilibrium_current: params must be an HHParams, got str"),
    ("analysis.equilibrium_current", "string V", lambda: A.equilibrium_current(P(), "a"), TypeError, r"equilibrium_current: V \(mV\) must be a number"),
    ("analysis.equilibria", "population params", lambda: A.equilibria(P(gNa=np.full(3, 120.0))), ValueError, r"params must describe one neuron .*population shape \(3,\)"),
    ("analysis.equilibria", "num < 3", lambda: A.equilibria(P(), num=2), ValueError, r"num must be an integer >= 3, got 2"),
    ("analysis.equilibria", "V_min >= V_max", lambda: A.equilibria(P(), V_min=10.0, V_max=-10.0), ValueError, r"V_min < V_max must be finite"),
    ("analysis.equilibria", "string I", lambda: A.equilibria(P(), "a"), TypeError, r"I \(uA/cm\^2\) must be a number"),
    ("analysis.equilibria", "non-finite I", lambda: A.equilibria(P(), NAN), ValueError, r"I must be finite \(uA/cm\^2\), got nan"),
    ("analysis.to_vector", "y not HHState", lambda: A.to_vector((-65.0, 0.1, 0.6, 0.3)), TypeError, r"y must be an HHState, got tuple"),
    ("analysis.from_vector", "x not of shape (4,)", lambda: A.from_vector(np.ones(3)), ValueError, r"from_vector: x must have shape \(4,\) .*got \(3,\)"),
    ("analysis.jacobian", "y not HHState", lambda: A.jacobian(P(), -65.0), TypeError, r"y must be an HHState, got float"),
    ("analysis.jacobian", "population params", lambda: A.jacobian(P(gNa=np.full(2, 120.0)), Y), ValueError, r"params must describe one neuron"),
    ("analysis.jacobian", "string I", lambda: A.jacobian(P(), Y, "a"), TypeError, r"I \(uA/cm\^2\) must be a number"),
    ("analysis.stability", "params not HHParams", lambda: A.stability(None, Y), TypeError, r"params must be an HHParams, got NoneType"),
    ("analysis.eigenvalues", "y not HHState", lambda: A.eigenvalues(P(), None), TypeError, r"y must be an HHState, got NoneType"),
    ("analysis.classify", "eigenvalues not 1-D", lambda: A.classify(np.ones((2, 2))), ValueError, r"classify: eigenvalues must be a non-empty 1-D array \[k\], got shape \(2, 2\)"),
    ("analysis.classify", "string eigenvalues", lambda: A.classify("a"), TypeError, r"classify: eigenvalues must be a 1-D array of numbers"),
    ("analysis.classify", "negative tol", lambda: A.classify(np.ones(4), tol=-1.0), ValueError, r"classify: tol must be a finite number >= 0"),
    ("analysis.leading_pair_real_part", "empty eigenvalues", lambda: A.leading_pair_real_part(np.ones(0)), ValueError, r"leading_pair_real_part: eigenvalues must be a non-empty 1-D array"),
    ("analysis.equilibrium_branch", "2-D currents", lambda: A.equilibrium_branch(P(), np.ones((2, 2))), ValueError, r"currents must be a non-empty 1-D array \(uA/cm\^2\), got shape \(2, 2\)"),
    ("analysis.equilibrium_branch", "non-finite current", lambda: A.equilibrium_branch(P(), [0.0, NAN]), ValueError, r"currents must be finite"),
    ("analysis.equilibrium_branch", "string currents", lambda: A.equilibrium_branch(P(), "a"), TypeError, r"currents \(uA/cm\^2\) must be a number or a float array"),
    ("analysis.hopf_current", "string I0", lambda: A.hopf_current(P(), "a"), TypeError, r"I0 \(uA/cm\^2\) must be a number"),
    ("analysis.hopf_points", "I_min >= I_max", lambda: A.hopf_points(P(), I_min=10.0, I_max=0.0), ValueError, r"I_min < I_max must be finite"),
    ("analysis.hopf_points", "num < 2", lambda: A.hopf_points(P(), num=1), ValueError, r"num must be an integer >= 2, got 1"),
    ("analysis.flow", "x0 not of shape (4,)", lambda: A.flow(P(), 0.0, np.ones(3), 1.0), ValueError, r"flow: x0 must have shape \(4,\)"),
    ("analysis.flow", "params not HHParams", lambda: A.flow("p", 0.0, np.ones(4), 1.0), TypeError, r"params must be an HHParams, got str"),
    ("analysis.limit_cycle", "guess not HHState", lambda: A.limit_cycle(P(), 10.0, (1.0, 2.0), 14.0), TypeError, r"guess must be an HHState, got tuple"),
    ("analysis.limit_cycle", "period <= 0", lambda: A.limit_cycle(P(), 10.0, Y, -1.0), ValueError, r"period must be > 0 \(ms\), got -1\.0"),
    ("analysis.cycle_path", "cycle not a LimitCycle", lambda: A.cycle_path(P(), "c"), TypeError, r"cycle_path: cycle must be a LimitCycle"),
    ("analysis.cycle_guess", "dt <= 0", lambda: A.cycle_guess(P(), 10.0, dt=-1.0), ValueError, r"cycle_guess: dt must be a positive finite number"),
    ("analysis.cycle_guess", "I not a scalar", lambda: A.cycle_guess(P(), [1.0, 2.0]), ValueError, r"cycle_guess: I must be a finite scalar"),
    ("analysis.cycle_branch", "empty currents", lambda: A.cycle_branch(P(), []), ValueError, r"currents must be a non-empty 1-D sequence of finite numbers"),
    ("analysis.fi_curve", "start given by name", lambda: A.fi_curve(P(), [10.0], start="rest"), TypeError, r"start must be an AbstractStart \(e\.g\. FromHolding\(\)\), got 'rest'"),
    ("analysis.fi_curve", "window <= 0", lambda: A.fi_curve(P(), [10.0], window=-1.0), ValueError, r"window must be a positive finite number \(ms\)"),
    ("analysis.fi_curve", "non-finite current", lambda: A.fi_curve(P(), [NAN]), ValueError, r"currents must be a non-empty 1-D sequence of finite numbers"),
    ("analysis.fi_curve", "stepper given by name", lambda: A.fi_curve(P(), [10.0], stepper="rk4"), TypeError, r"stepper must be an AbstractStepper"),
    ("analysis.FromHolding", "string I_hold", lambda: A.FromHolding("a"), TypeError, r"FromHolding\.I_hold \(uA/cm\^2\) must be a number, got 'a'"),
    ("analysis.FromEquilibrium", "non-finite kick", lambda: A.FromEquilibrium(kick=NAN), ValueError, r"FromEquilibrium\.kick \(mV\) must be a finite number"),
    ("analysis.FromSpiking", "settle <= 0", lambda: A.FromSpiking(settle=-1.0), ValueError, r"FromSpiking\.settle \(ms\) must be a positive finite number"),
    ("analysis.AbstractStart", "instantiating the abstract class", lambda: A.AbstractStart(), TypeError, r"abstract"),
    ("analysis.phase_plane", "initial not HHState", lambda: A.phase_plane(P(), 10.0, -65.0), TypeError, r"initial must be an HHState, got float"),
    ("analysis.phase_plane", "initial not of shape [k]", lambda: A.phase_plane(P(), 10.0, Y), ValueError, r"initial must have shape \[k\], got \(\)"),
    ("analysis.phase_plane", "V_grid not 1-D", lambda: A.phase_plane(P(), 10.0, _Y2(), V_grid=np.ones((2, 2))), ValueError, r"phase_plane: V_grid must be a 1-D array"),
    ("analysis.phase_plane", "dt <= 0", lambda: A.phase_plane(P(), 10.0, _Y2(), dt=-1.0), ValueError, r"dt must be a positive finite number \(ms\), got -1\.0"),
]

FIT_ROWS = [
    ("fit.load_recording", "no such file", lambda: F.load_recording(os.path.join(_DIR.name, "none.csv")), ValueError, r"none\.csv: no such file"),
    ("fit.load_recording", "unknown format", lambda: F.load_recording(_file("rec.xyz", "x")), ValueError, r"rec\.xyz: unknown format .\.xyz.; use \.csv, \.npz, \.nwb or \.abf"),
    ("fit.load_recording", "non-monotonic time", lambda: F.load_recording(_file("nm.csv", "time_ms,voltage_mV\n0,-65\n2,-64\n1,-63\n")), ValueError, r"nm\.csv: time_ms is not strictly increasing at sample 2"),
    ("fit.Recording", "V and t of different lengths", lambda: F.Recording(t=np.arange(3.0), V=np.zeros(4)), ValueError, r"Recording\.V has 4 samples but Recording\.t has 3"),
    ("fit.Recording", "non-monotonic t", lambda: F.Recording(t=np.array([0.0, 2.0, 1.0]), V=np.zeros(3)), ValueError, r"Recording\.t must hold >= 2 strictly increasing times"),
    ("fit.Recording", "t not an array", lambda: F.Recording(t="a", V=np.zeros(3)), TypeError, r"Recording\.t must be a 1-D NumPy array of numbers"),
    ("fit.Recording.resample", "dt <= 0", lambda: F.Recording(t=np.arange(3.0), V=np.zeros(3)).resample(-1.0), ValueError, r"dt must be a positive finite number \(ms\), got -1\.0"),
    ("fit.Recording.resample", "duration longer than the recording", lambda: F.Recording(t=np.arange(3.0), V=np.zeros(3)).resample(0.5, duration=10.0), ValueError, r"duration 10\.0 ms exceeds the recording \(2 ms\)"),
    ("fit.Positive", "scale <= 0", lambda: F.Positive(scale=-1.0), ValueError, r"Positive\.scale must be a positive finite number"),
    ("fit.Positive", "string scale", lambda: F.Positive(scale="a"), TypeError, r"Positive\.scale must be a number, got 'a'"),
    ("fit.Interval", "lower >= upper", lambda: F.Interval(1.0, 0.0), ValueError, r"Interval needs finite lower < upper"),
    ("fit.Interval", "None bound", lambda: F.Interval(None, 1.0), TypeError, r"Interval\.lower must be a number, got None"),
    ("fit.AbstractTransform", "instantiating the abstract class", lambda: F.AbstractTransform(), TypeError, r"abstract"),
    ("fit.ParamSpace", "unknown field", lambda: F.ParamSpace(P(), ["gX"]), ValueError, r"ParamSpace\.fit: unknown or unfittable field 'gX'"),
    ("fit.ParamSpace", "unfittable field V_th", lambda: F.ParamSpace(P(), ["V_th"]), ValueError, r"unknown or unfittable field 'V_th'"),
    ("fit.ParamSpace", "no field", lambda: F.ParamSpace(P(), []), ValueError, r"ParamSpace\.fit must name at least one field"),
    ("fit.ParamSpace", "base not HHParams", lambda: F.ParamSpace("hh1952", ["gNa"]), TypeError, r"ParamSpace\.base must be an HHParams, got str"),
    ("fit.ParamSpace", "population base", lambda: F.ParamSpace(P(gNa=np.ones(2)), ["gNa"]), ValueError, r"ParamSpace\.base must have scalar fields"),
    ("fit.ParamSpace", "transform given by name", lambda: F.ParamSpace(P(), {"gNa": "positive"}), TypeError, r"ParamSpace\.fit\['gNa'\] must be an AbstractTransform or None"),
    ("fit.trace_mse", "shapes differ", lambda: F.trace_mse(np.ones(3), np.ones(4)), ValueError, r"V_model has shape \(3,\) but V_data has shape \(4,\)"),
    ("fit.trace_mse", "weights do not broadcast", lambda: F.trace_mse(np.ones((3, 2)), np.ones((3, 2)), weights=np.ones(3)), ValueError, r"weights \(shape \(3,\)\) must broadcast to the traces' population shape \(2,\)"),
    ("fit.soft_spike_count", "width <= 0", lambda: F.soft_spike_count(np.ones(3), width=0.0), ValueError, r"soft_spike_count: width \(mV\) must be a positive finite number"),
    ("fit.window_stats", "samples_per_window < 2", lambda: F.window_stats(np.ones(10), samples_per_window=1), ValueError, r"samples_per_window must be an integer >= 2, got 1"),
    ("fit.window_stats", "window longer than the trace", lambda: F.window_stats(np.ones(10), samples_per_window=20), ValueError, r"samples_per_window \(20\) exceeds the trace length \(10\)"),
    ("fit.summary_loss", "scale <= 0", lambda: F.summary_loss(np.ones(10), np.ones(10), samples_per_window=5, scales=(1.0, 0.0, 1.0)), ValueError, r"summary_loss: scales must be a positive finite number, got 0\.0"),
    ("fit.summary_loss", "wrong number of scales", lambda: F.summary_loss(np.ones(10), np.ones(10), samples_per_window=5, scales=(1.0,)), ValueError, r"summary_loss: scales must be 3 numbers"),
    ("fit.spike_time_loss", "t_end <= 0", lambda: F.spike_time_loss(np.ones(3), np.ones(3), t_end=-1.0), ValueError, r"spike_time_loss: t_end \(ms\) must be a positive finite number"),
    ("fit.spike_time_loss", "population shapes differ", lambda: F.spike_time_loss(np.ones((3, 2)), np.ones((3, 3)), t_end=10.0), ValueError, r"t_model has shape \(3, 2\) but t_data has shape \(3, 3\)"),
    ("fit.weighted_sum", "weights and losses of different lengths", lambda: F.weighted_sum([1.0], [1.0, 2.0]), ValueError, r"weighted_sum needs as many weights as losses"),
    ("fit.TraceObjective", "dt <= 0", lambda: F.TraceObjective(10.0, np.ones(11), dt=-0.1), ValueError, r"TraceObjective\.dt must be a positive finite number \(ms\), got -0\.1"),
    ("fit.TraceObjective", "NaN in V_data", lambda: F.TraceObjective(10.0, np.array([1.0, NAN, 2.0]), dt=0.1), ValueError, r"TraceObjective\.V_data contains NaN/Inf \(1 value\(s\)\)"),
    ("fit.TraceObjective", "string V_data", lambda: F.TraceObjective(10.0, "a", dt=0.1), TypeError, r"TraceObjective\.V_data must be a number or a float array, got 'a'"),
    ("fit.TraceObjective", "backend not a fixed-step loop", lambda: F.TraceObjective(10.0, np.ones(11), dt=0.1, backend=hh_jax.DiffraxAdapter(diffrax.Tsit5())), TypeError, r"TraceObjective\.backend must be None \(automatic\) or a fixed-step loop"),
    ("fit.TraceObjective", "the removed checkpoint= (now backend=ScanLoop(checkpoint=True))", lambda: F.TraceObjective(10.0, np.ones(11), dt=0.1, checkpoint=True), TypeError, r"unexpected keyword argument 'checkpoint'"),
    ("fit.TraceObjective", "one sample", lambda: F.TraceObjective(10.0, np.ones(1), dt=0.1), ValueError, r"TraceObjective\.V_data must be \[time, \*pop\] with >= 2 samples"),
    ("fit.TraceObjective", "duration longer than the recording", lambda: F.TraceObjective(10.0, np.ones(11), dt=0.1, duration=2.0), ValueError, r"TraceObjective\.duration \(2\.0 ms\) exceeds the recording \(1\.0 ms\)"),
    ("fit.TraceObjective", "stepper given by name", lambda: F.TraceObjective(10.0, np.ones(11), dt=0.1, stepper="rk4"), TypeError, r"TraceObjective\.stepper must be an AbstractStepper"),
    ("fit.SpikeTimeObjective", "NaN in t_data", lambda: F.SpikeTimeObjective(10.0, np.array([1.0, NAN]), dt=0.01, duration=10.0), ValueError, r"SpikeTimeObjective\.t_data contains NaN"),
    ("fit.SpikeTimeObjective", "dt = 0", lambda: F.SpikeTimeObjective(10.0, np.array([1.0]), dt=0.0, duration=10.0), ValueError, r"SpikeTimeObjective\.dt must be a positive finite number"),
    ("fit.SpikeTimeObjective", "duration <= 0", lambda: F.SpikeTimeObjective(10.0, np.array([1.0]), dt=0.01, duration=-10.0), ValueError, r"SpikeTimeObjective\.duration must be a positive finite number"),
    ("fit.default_mode", "loss_fn not callable", lambda: F.default_mode("mse", 3), TypeError, r"default_mode: loss_fn must be callable"),
    ("fit.default_mode", "n_fields < 1", lambda: F.default_mode(_LOSS, 0), ValueError, r"default_mode: n_fields must be an integer >= 1, got 0"),
    ("fit.optimize", "loss_fn not callable", lambda: F.optimize("mse", _SPACE()), TypeError, r"loss_fn must be callable"),
    ("fit.optimize", "space not a ParamSpace", lambda: F.optimize(_LOSS, ["gNa"]), TypeError, r"space must be a ParamSpace, got list"),
    ("fit.optimize", "steps < 1", lambda: F.optimize(_LOSS, _SPACE(), steps=0), ValueError, r"steps must be an integer >= 1, got 0"),
    ("fit.optimize", "n_starts < 1", lambda: F.optimize(_LOSS, _SPACE(), n_starts=0), ValueError, r"n_starts must be an integer >= 1, got 0"),
    ("fit.optimize", "mode given as a string", lambda: F.optimize(_LOSS, _SPACE(), mode="forward"), TypeError, r"mode must be a gradient mode, fit\.ForwardMode\(\) or fit\.ReverseMode\(\), got 'forward'"),
    ("fit.optimize", "clip <= 0", lambda: F.optimize(_LOSS, _SPACE(), clip=-1.0), ValueError, r"clip must be a positive number, got -1\.0"),
    ("fit.optimize", "init of the wrong shape", lambda: F.optimize(_LOSS, _SPACE(), init=np.ones((2, 3))), ValueError, r"init must have shape \[K, 1\], got \(2, 3\)"),
    ("fit.value_and_grad", "mode given as a string", lambda: F.value_and_grad(_LOSS, _SPACE(), mode="reverse"), TypeError, r"value_and_grad: mode must be a gradient mode"),
    ("fit.value_and_grad", "space not a ParamSpace", lambda: F.value_and_grad(_LOSS, "gNa"), TypeError, r"value_and_grad: space must be a ParamSpace, got str"),
    ("fit.polish", "objective not an AbstractObjective", lambda: F.polish(_LOSS, None), TypeError, r"polish: objective must be an AbstractObjective \(e\.g\. TraceObjective\), with a residuals\(params\) method, got function"),
    ("fit.AbstractObjective", "instantiating the abstract class", lambda: F.AbstractObjective(), TypeError, r"abstract"),
    ("fit.polish", "result not a FitResult", lambda: F.polish(F.TraceObjective(10.0, np.ones(11), dt=0.1), "r"), TypeError, r"polish: result must be a FitResult, got str"),
]

PLOT_ROWS = [
    ("plot.raster", "not a SimulationResult", lambda: Pl.raster("x"), TypeError, r"result must be a SimulationResult, got str"),
    ("plot.raster", "neuron index out of range", lambda: Pl.raster(_result(), neurons=[5]), ValueError, r"neurons: index 5 out of range for 1 neuron"),
    ("plot.rate_histogram", "not a SimulationResult", lambda: Pl.rate_histogram(3), TypeError, r"result must be a SimulationResult, got int"),
    ("plot.current_traces", "currents not recorded", lambda: Pl.current_traces(_result()), ValueError, r"'INa' was not recorded; pass record=\(\.\.\., 'INa'\)"),
    ("plot.current_traces", "not a SimulationResult", lambda: Pl.current_traces("x"), TypeError, r"result must be a SimulationResult, got str"),
    ("plot.conductance_traces", "not a SimulationResult", lambda: Pl.conductance_traces(None), TypeError, r"result must be a SimulationResult, got NoneType"),
    ("plot.traces", "unknown name", lambda: Pl.traces(_result(), ("V", "ICa")), ValueError, r"names: unknown or empty \['ICa'\]"),
    ("plot.traces", "names of different units", lambda: Pl.traces(_result(), ("V", "m")), ValueError, r"names: the traces have different units"),
    ("plot.stacked", "neuron index out of range", lambda: Pl.stacked(_result(), neurons=[3]), ValueError, r"neurons: index 3 out of range for 1 neuron"),
    ("plot.bifurcation", "not an EquilibriumBranch", lambda: Pl.bifurcation(np.ones(3)), TypeError, r"branch must be an EquilibriumBranch .*got ndarray"),
    ("plot.fi", "not an FICurve", lambda: Pl.fi({"I": [1.0]}), TypeError, r"curve must be an FICurve .*got dict"),
    ("plot.spectrum", "not numbers", lambda: Pl.spectrum("x"), TypeError, r"w \(eigenvalues\) must be an array of numbers, got 'x'"),
    ("plot.phase_portrait", "not a PhasePlane", lambda: Pl.phase_portrait(_result()), TypeError, r"pp must be a PhasePlane .*got SimulationResult"),
    ("plot.fit_overlay", "V_data rows != len(t)", lambda: Pl.fit_overlay(np.arange(3.0), np.zeros(4), _result()), ValueError, r"V_data \(shape \(4,\)\) must have one row per time in t \(shape \(3,\)\)"),
    ("plot.fit_overlay", "result not a SimulationResult", lambda: Pl.fit_overlay(np.arange(3.0), np.zeros(3), "r"), TypeError, r"result must be a SimulationResult, got str"),
    ("plot.loss_curve", "not a FitResult or numbers", lambda: Pl.loss_curve("x"), TypeError, r"fit_result must be an array of numbers, got 'x'"),
    ("plot.parameter_spread", "not a FitResult", lambda: Pl.parameter_spread("x"), TypeError, r"fit_result must be a FitResult \(fit\.optimize\), got str"),
]

_A_FILE = lambda: _file("a_file", "x")  # noqa: E731
_CHUNKED = lambda **kw: hh_jax.simulate_chunked(P(), 10.0, **{"duration": 1.0, "dt": 0.01, "out": os.path.join(_DIR.name, "chunks"), "progress": False, **kw})  # noqa: E731
_SHARDED = lambda **kw: hh_jax.simulate_sharded(P(), 10.0, **{"duration": 1.0, "dt": 0.01, **kw})  # noqa: E731


def _mesh(axis):
    return jax.sharding.Mesh(np.array(jax.devices()), (axis,))


# Long and large runs: simulate_chunked, simulate_sharded, use_cpu_devices. The options they pass
# on to `simulate` are checked there (rows "simulate"); one representative each here.
RUN_ROWS = [
    ("simulate_chunked", "params not HHParams", lambda: hh_jax.simulate_chunked("hh1952", 10.0, duration=1.0, dt=0.01, out=_DIR.name), TypeError, r"params must be an HHParams, got str"),
    ("simulate_chunked", "out not a path", lambda: _CHUNKED(out=3), TypeError, r"out must be a folder path \(str or os\.PathLike\), got 3"),
    ("simulate_chunked", "out is an existing file", lambda: _CHUNKED(out=_A_FILE()), ValueError, r"out: '.*a_file' exists and is not a folder"),
    ("simulate_chunked", "out inside a file", lambda: _CHUNKED(out=os.path.join(_A_FILE(), "sub")), ValueError, r"out: cannot create the folder '.*a_file/sub' \(Not a directory\)"),
    ("simulate_chunked", "chunk_steps < 1", lambda: _CHUNKED(chunk_steps=0), ValueError, r"chunk_steps must be an integer >= 1, got 0"),
    ("simulate_chunked", "chunk_steps not an int", lambda: _CHUNKED(chunk_steps=2.5), ValueError, r"chunk_steps must be an integer >= 1, got 2\.5"),
    ("simulate_chunked", "chunk_steps not a multiple of record_every", lambda: _CHUNKED(chunk_steps=150, record=("V",), record_every=100), ValueError, r"chunk_steps \(150\) must be a multiple of record_every \(100\)"),
    ("simulate_chunked", "steps not a multiple of record_every", lambda: _CHUNKED(duration=1.5, chunk_steps=100, record=("V",), record_every=100), ValueError, r"the number of steps \(150\) must be a multiple of record_every"),
    ("simulate_chunked", "unknown recorded name", lambda: _CHUNKED(record=("Q",)), ValueError, r"record: unknown variable\(s\) \['Q'\]"),
    ("simulate_chunked", "duration <= 0", lambda: _CHUNKED(duration=-1.0), ValueError, r"duration must be a positive finite number \(ms\), got -1\.0"),
    ("simulate_chunked", "duration not a whole number of steps", lambda: _CHUNKED(duration=1.0, dt=0.03), ValueError, r"duration \(1\.0 ms\) must be a whole number of steps dt \(0\.03 ms\)"),
    ("simulate_chunked", "progress not a bool", lambda: _CHUNKED(progress="no"), TypeError, r"progress must be a bool, got 'no'"),
    ("simulate_chunked", "stepper given by name", lambda: _CHUNKED(stepper="rk4"), TypeError, r"stepper must be an AbstractStepper"),
    ("simulate_sharded", "params not HHParams", lambda: hh_jax.simulate_sharded("hh1952", 10.0, duration=1.0, dt=0.01), TypeError, r"params must be an HHParams, got str"),
    ("simulate_sharded", "devices empty", lambda: _SHARDED(devices=[]), ValueError, r"devices must not be empty"),
    ("simulate_sharded", "devices given by name", lambda: _SHARDED(devices=["cpu"]), TypeError, r"devices must hold jax\.Device objects \(e\.g\. jax\.devices\(\)\), got 'cpu'"),
    ("simulate_sharded", "devices given as a count", lambda: _SHARDED(devices=2), TypeError, r"devices must be a sequence of jax\.Device or a Mesh, got 2"),
    ("simulate_sharded", "a device listed twice", lambda: _SHARDED(devices=jax.devices() * 2), ValueError, r"devices must not repeat a device"),
    ("simulate_sharded", "Mesh with another axis name", lambda: _SHARDED(devices=_mesh("x")), ValueError, r"devices: a Mesh must have the single axis 'neurons', got \('x',\)"),
    ("simulate_sharded", "dt <= 0", lambda: _SHARDED(dt=0.0), ValueError, r"dt must be a positive finite number \(ms\), got 0\.0"),
    ("simulate_sharded", "non-finite t0", lambda: _SHARDED(t0="a"), ValueError, r"t0 must be a finite number \(ms\), got 'a'"),
    ("simulate_sharded", "y0 not an HHState", lambda: _SHARDED(y0=(-65.0, 0.1, 0.6, 0.3)), TypeError, r"y0 must be an HHState, got tuple"),
    ("simulate_sharded", "stimulus shape does not broadcast with params", lambda: hh_jax.simulate_sharded(P(gNa=np.ones(2)), np.ones(3), duration=1.0, dt=0.01), ValueError, r"population shapes do not broadcast: params \(2,\), stimulus \(3,\)"),
    ("simulate_sharded", "unknown keyword option", lambda: _SHARDED(recrod=("V",)), TypeError, r"unexpected keyword argument 'recrod'"),
    ("use_cpu_devices", "n < 1", lambda: hh_jax.use_cpu_devices(0), ValueError, r"n must be an integer >= 1, got 0"),
    ("use_cpu_devices", "n not an int", lambda: hh_jax.use_cpu_devices(2.0), ValueError, r"n must be an integer >= 1, got 2\.0"),
    ("use_cpu_devices", "called after JAX made its first array, with another count", lambda: hh_jax.use_cpu_devices(len(jax.devices("cpu")) + 1), RuntimeError, r"use_cpu_devices\(\d+\) must be called before JAX creates its first array; the CPU backend already has \d+ device\(s\)"),
]

# Issue 12 ("robustness, round two"): one list per area, so that the rows of each area stay together.

def _setenv(name, value):
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _with_env(**env):
    """`simulate` under these environment variables (None: unset), the kernel cache in a
    temporary folder, warnings raised as errors. The load of the kernel is redone, then undone."""
    from hh_jax import _kernel_build

    def call():
        names = [*env, "HH_JAX_CACHE_DIR", "HOME"]
        saved = {k: os.environ.get(k) for k in names}
        os.environ.update(HH_JAX_CACHE_DIR=os.path.join(_DIR.name, "kernel_cache"), HOME=_DIR.name)
        for k, v in env.items():
            _setenv(k, v)
        _kernel_build.load.cache_clear()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                return hh_jax.simulate(P(), 10.0, duration=1.0, dt=0.01)
        finally:
            for k, v in saved.items():
                _setenv(k, v)
            _kernel_build.load.cache_clear()

    return call


# The kernel cache (hh_jax/_kernel_build.py and hh_jax/_fused.py): fallbacks are warnings, not errors
# (tests/test_kernel_cache.py); here the warnings about unclear settings, raised as errors.
CACHE_ROWS = [
    ("simulate", "HH_JAX_NO_KERNEL neither true nor false (a warning; the kernel stays enabled)", _with_env(HH_JAX_NO_KERNEL="maybe"), UserWarning, r"HH_JAX_NO_KERNEL='maybe' is not one of 1/true/yes/on or 0/false/no/off; the fused kernel stays enabled"),
    ("simulate", "relative XDG_CACHE_HOME (a warning; ignored as the XDG specification says)", _with_env(HH_JAX_CACHE_DIR=None, XDG_CACHE_HOME="relative/cache"), UserWarning, r"XDG_CACHE_HOME='relative/cache' is a relative path, which the XDG specification says to ignore"),
    ("simulate", "HH_JAX_COMPILE_TIMEOUT not a positive number (a warning; 300 s used)", _with_env(HH_JAX_COMPILE_TIMEOUT="-1"), UserWarning, r"HH_JAX_COMPILE_TIMEOUT='-1' is not a positive number of seconds; using 300 s"),
]


# The fused kernel and the stimulus classes (time invariance, tables).
KERNEL_ROWS = [
]


# The simulate family's shared checks (simulate, simulate_chunked, simulate_sharded): t0, dtypes,
# memory estimates, record=None, longdouble/bool parameters, float32 dt underflow.
_SIM = lambda *a, **kw: hh_jax.simulate(*(a or (P(), 10.0)), **{"duration": 1.0, "dt": 0.01, **kw})  # noqa: E731
_P32 = lambda: P().astype(np.float32)  # noqa: E731
_HUGE = lambda f: f(P(), np.full(10**6, 10.0), duration=1e5, dt=0.01, record=("V",))  # noqa: E731; ~7e4 GiB of trace

FAMILY_ROWS = [
    ("simulate_chunked", "NaN t0", lambda: _CHUNKED(t0=NAN), ValueError, r"t0 must be a finite number \(ms\), got nan"),
    ("simulate_chunked", "infinite t0", lambda: _CHUNKED(t0=float("inf")), ValueError, r"t0 must be a finite number \(ms\), got inf"),
    ("simulate_chunked", "bool t0", lambda: _CHUNKED(t0=True), ValueError, r"t0 must be a finite number \(ms\), got True"),
    ("simulate_chunked", "duration not a number", lambda: _CHUNKED(duration="1"), TypeError, r"duration must be a number \(ms\), got '1'"),
    ("simulate_chunked", "y0 not an HHState", lambda: _CHUNKED(y0=(-65.0, 0.1, 0.6, 0.3)), TypeError, r"y0 must be an HHState, got tuple"),
    ("simulate_chunked", "throw not a bool", lambda: _CHUNKED(throw="yes"), TypeError, r"throw must be a bool, got 'yes'"),
    ("simulate_sharded", "NaN t0", lambda: _SHARDED(t0=NAN), ValueError, r"t0 must be a finite number \(ms\), got nan"),
    ("simulate_sharded", "record_every < 1", lambda: _SHARDED(record_every=0), ValueError, r"record_every must be an integer >= 1, got 0"),
    ("simulate", "t0 an array of several times", lambda: _SIM(t0=np.zeros(2)), ValueError, r"t0 must be a finite number \(ms\), got an array of shape \(2,\)"),
    ("simulate", "record=None", lambda: _SIM(record=None), TypeError, r"record must be a sequence of names .*got None; pass record=\(\) to record nothing"),
    ("simulate_chunked", "record=None", lambda: _CHUNKED(record=None), TypeError, r"record must be a sequence of names .*got None"),
    ("simulate_sharded", "record=None", lambda: _SHARDED(record=None), TypeError, r"record must be a sequence of names .*got None"),
    ("simulate", "record not a sequence", lambda: _SIM(record=3), TypeError, r"record must be a sequence of names \(e\.g\. \('V', 'm'\)\), got 3"),
    ("simulate", "float32 dt that is 0 in float32 (1e-50)", lambda: _SIM(_P32(), 10.0, duration=1e-50, dt=1e-50), ValueError, r"dt \(1e-50 ms\) is 0 in the working dtype float32"),
    ("simulate_chunked", "float32 dt that is 0 in float32 (1e-50)", lambda: hh_jax.simulate_chunked(_P32(), 10.0, duration=1e-50, dt=1e-50, out=os.path.join(_DIR.name, "chunks"), progress=False), ValueError, r"dt \(1e-50 ms\) is 0 in the working dtype float32"),
    ("simulate", "float32 clock does not advance (t0 = 1e6 ms, dt = 0.01 ms)", lambda: _SIM(_P32(), 10.0, t0=1e6), ValueError, r"dt \(0\.01 ms\) is below the resolution of float32 at t = 1000000\.0 ms \(t \+ dt == t\)"),
    ("simulate", "run larger than the available memory", lambda: _HUGE(hh_jax.simulate), ValueError, r"this run needs at least [\d.e+]+ GiB \(traces .*\) but only [\d.e+]+ GiB of .*memory is available"),
    ("simulate_sharded", "run larger than the available memory", lambda: _HUGE(hh_jax.simulate_sharded), ValueError, r"this run needs at least [\d.e+]+ GiB \(traces .*\) but only [\d.e+]+ GiB of .*memory is available"),
    ("HHParams", "bool conductance", lambda: P(gK=True), TypeError, r"HHParams\.gK must be a number or a float array, got a bool \(True\)"),
    ("HHParams", "longdouble field", lambda: P(gNa=np.ones(2, np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else "x"), TypeError, r"HHParams\.gNa(: dtype float128 \(long double\) is not supported| must be a number)"),
]


# Output: simulate_chunked (overwrite/resume), save_params, CLI output folders.
@functools.cache
def _chunked_run(name="finished", complete=True):
    """A folder holding a 1 ms chunked run (two chunks); `complete=False` marks it interrupted."""
    out = os.path.join(_DIR.name, name)
    hh_jax.simulate_chunked(P(), 10.0, duration=1.0, dt=0.01, out=out, chunk_steps=50, record_every=50, progress=False)
    if not complete:
        meta_path = os.path.join(out, "meta.json")
        with open(meta_path) as f:
            meta = json.load(f)
        with open(meta_path, "w") as f:
            json.dump(meta | {"complete": False}, f)
        os.remove(os.path.join(out, "chunk_00001.npz"))
    return out


def _a_folder_with(name, content):
    folder = os.path.join(_DIR.name, name)
    os.makedirs(folder, exist_ok=True)
    _file(os.path.join(name, "notes.txt"), content)
    return folder


_RUN = lambda **kw: hh_jax.simulate_chunked(P(), 10.0, **{"duration": 1.0, "dt": 0.01, "chunk_steps": 50, "record_every": 50, "progress": False, **kw})  # noqa: E731

def _cli(*argv):
    """Run ``hh-jax ARGV``; its one-line error (exit status 2) raised as a `ValueError`."""
    import contextlib
    import io

    from hh_jax._cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(list(argv))
    if status == 2:
        raise ValueError(err.getvalue().strip())
    return status


def _read_only_params():
    path = os.path.join(_DIR.name, "read_only.json")
    if os.path.exists(path):
        os.chmod(path, 0o644)
    hh_jax.save_params(path, P())
    os.chmod(path, 0o444)
    return path


OUTPUT_ROWS = [
    ("save_params", "onto a read-only file (also as root)", lambda: hh_jax.save_params(_read_only_params(), P()), PermissionError, r"Permission denied \(the file is read-only\): '.*read_only\.json'"),
    ("load_result", "a JSON file", lambda: hh_jax.load_result(_file("run.json", '{"format": 1}')), ValueError, r"run\.json: not a readable \.npz archive \(a JSON file, starting .*; expected an \.npz archive written by hh_jax\.save_result\)"),
    ("load_result", "an empty file", lambda: hh_jax.load_result(_file("empty.npz", "")), ValueError, r"empty\.npz: not a readable \.npz archive \(the file is empty; expected an \.npz archive"),
    ("simulate_chunked", "out holds a finished run (no overwrite/resume)", lambda: _RUN(out=_chunked_run()), ValueError, r"out: folder '.*finished' is not empty: it holds a finished simulate_chunked run\. Pass overwrite=True"),
    ("simulate_chunked", "out holds an interrupted run (no resume)", lambda: _RUN(out=_chunked_run("interrupted", False)), ValueError, r"out: folder '.*interrupted' is not empty: it holds an interrupted simulate_chunked run \(continue it with resume=True\)"),
    ("simulate_chunked", "out holds other files", lambda: _RUN(out=_a_folder_with("other", "x")), ValueError, r"out: folder '.*other' is not empty: it holds 1 file\(s\) that are not a simulate_chunked run"),
    ("simulate_chunked", "resume=True into a folder of other files", lambda: _RUN(out=_a_folder_with("other", "x"), resume=True), ValueError, r"resume: folder '.*other' holds no simulate_chunked run to resume"),
    ("simulate_chunked", "resume=True with other arguments than the interrupted run", lambda: _RUN(out=_chunked_run("interrupted", False), resume=True, dt=0.005, duration=0.5), ValueError, r"resume: .*interrupted holds a run with another configuration \(differs in: dt\)"),
    ("simulate_chunked", "overwrite=True and resume=True", lambda: _RUN(out=_chunked_run(), overwrite=True, resume=True), ValueError, r"overwrite and resume exclude each other"),
    ("simulate_chunked", "resume not a bool", lambda: _RUN(out=_chunked_run(), resume="yes"), TypeError, r"resume must be a bool, got 'yes'"),
    ("simulate_chunked", "overwrite not a bool", lambda: _RUN(out=_chunked_run(), overwrite=1), TypeError, r"overwrite must be a bool, got 1"),
    ("hh-jax simulate", "--out is an existing file (checked before computing)", lambda: _cli("simulate", "--out", _A_FILE()), ValueError, r"hh-jax: error: --out: '.*a_file' exists and is not a folder"),
    ("hh-jax simulate", "--out inside a file", lambda: _cli("simulate", "--out", os.path.join(_A_FILE(), "sub")), ValueError, r"--out: '.*a_file' is not a folder, so '.*a_file/sub' cannot be created"),
    ("hh-jax fi", "--out a non-empty folder that is not hh-jax output", lambda: _cli("fi", "--out", _a_folder_with("other", "x")), ValueError, r"--out: folder '.*other' is not empty and not an hh-jax output folder \(it holds notes\.txt\); choose a new or empty folder"),
    ("hh-jax bifurcation", "--out a folder whose sub-folder is not hh-jax output", lambda: _cli("bifurcation", "--out", os.path.dirname(_a_folder_with(os.path.join("parent", "sub"), "x"))), ValueError, r"--out: folder '.*parent' is not empty and not an hh-jax output folder \(it holds sub/\)"),
    ("hh-jax fit", "--out is an existing file", lambda: _cli("fit", "--data", _A_FILE(), "--protocol", "10", "--out", _A_FILE()), ValueError, r"--out: '.*a_file' exists and is not a folder"),
    ("ChunkedResult.load", "path not a path", lambda: hh_jax.ChunkedResult.load(3), TypeError, r"path must be a folder path \(str or os\.PathLike\), got 3"),
    ("ChunkedResult.load", "not a folder", lambda: hh_jax.ChunkedResult.load(_A_FILE()), ValueError, r"path: '.*a_file' is not a folder"),
    ("ChunkedResult.load", "folder without meta.json", lambda: hh_jax.ChunkedResult.load(_a_folder_with("other", "x")), ValueError, r"other: no readable meta\.json of a simulate_chunked run; not a chunked-run folder"),
    ("ChunkedResult.load", "interrupted (incomplete) run", lambda: hh_jax.ChunkedResult.load(_chunked_run("interrupted", False)), ValueError, r"interrupted: holds an incomplete simulate_chunked run \(interrupted; 1 of 2 chunk files present\)\. Continue it with simulate_chunked\(\.\.\., out='.*', resume=True\)"),
]


# The CLI and the recording loaders: implausible data, out-of-range settings, BOM, file names.
def _cli_exit(*argv):
    """Run ``hh-jax ARGV`` in-process as the shell would; raise SystemExit("exit status N: <stderr>")."""
    import contextlib
    import io

    from hh_jax._cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main([*argv, "--out", os.path.join(_DIR.name, "cli_out")])
        except SystemExit as e:  # argparse
            code = e.code
    raise SystemExit(f"exit status {code}: {err.getvalue().strip()}")


_T = [0.1 * k for k in range(101)]  # a 10 ms recording
_rec_csv = lambda name, V=lambda t: -65.0, t=_T: _file(name, "time_ms,voltage_mV\n" + "".join(f"{x!r},{V(x)!r}\n" for x in t))  # noqa: E731
_REC = lambda: _rec_csv("rec10.csv")  # noqa: E731


def _rec_npz(name, **arrays):
    path = os.path.join(_DIR.name, name)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _npy_as_npz():
    path = os.path.join(_DIR.name, "one.npz")
    with open(path, "wb") as f:
        np.save(f, np.arange(3.0))
    return path


def _zip_member_not_npy():
    import zipfile

    path = os.path.join(_DIR.name, "member.npz")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("time_ms", b"0,1")
        z.writestr("voltage_mV.npy", b"x")
    return path


_E2 = r"exit status 2: hh-jax: error: "
DATA_ROWS = [
    ("hh-jax simulate", "--seed beyond int64", lambda: _cli_exit("simulate", "--seed", "9" * 30), SystemExit, _E2 + r"argument --seed: must be an integer that fits in int64"),
    ("hh-jax simulate", "--record-every huge", lambda: _cli_exit("simulate", "--record-every", "9" * 20), SystemExit, _E2 + r"argument --record-every: must be an integer in \[1, 1000000000\]"),
    ("hh-jax simulate", "--record-every above the number of steps", lambda: _cli_exit("simulate", "--duration", "1", "--record-every", "1000"), SystemExit, _E2 + r"--record-every 1000 exceeds the number of steps \(100\)"),
    ("hh-jax simulate", "--n huge", lambda: _cli_exit("simulate", "--n", "9" * 20), SystemExit, _E2 + r"argument --n: must be an integer in \[1, 100000000\]"),
    ("hh-jax simulate", "--n 1e7: traces larger than the memory", lambda: _cli_exit("simulate", "--n", "10000000"), SystemExit, _E2 + r"recording V, m, h, n of 10000000 neuron\(s\) at 20001 times needs about .* GB but .* GB of .*memory is available; lower --n"),
    ("hh-jax simulate", "--current 1e300", lambda: _cli_exit("simulate", "--current", "1e300"), SystemExit, _E2 + r"argument --current: 1e300 uA/cm\^2 is outside the model's range \|I\| <= 10000 uA/cm\^2"),
    ("hh-jax simulate", "--current -inf", lambda: _cli_exit("simulate", "--current", "-inf"), SystemExit, _E2 + r"argument --current: must be finite, got -inf"),
    ("hh-jax simulate", "--rtol 1e-300", lambda: _cli_exit("simulate", "--method", "tsit5", "--rtol", "1e-300"), SystemExit, _E2 + r"--rtol 1e-300 is below what float(32|64) can resolve \(4 x machine epsilon"),
    ("hh-jax simulate", "--dt outside the documented accuracy range", lambda: _cli_exit("simulate", "--dt", "100"), SystemExit, _E2 + r"argument --dt: must be <= 0\.1 ms \(the documented accuracy range"),
    ("hh-jax simulate", "more than 1e9 steps", lambda: _cli_exit("simulate", "--dt", "1e-12", "--record-every", "1000000000"), SystemExit, _E2 + r"--duration/--dt: 200 ms at dt = 1e-12 ms is 2e\+14 steps, more than 1e\+09"),
    ("hh-jax fi", "--i-max 1e300", lambda: _cli_exit("fi", "--i-max", "1e300"), SystemExit, _E2 + r"argument --i-max: 1e300 uA/cm\^2 is outside the model's range"),
    ("hh-jax fi", "--dt 100 (all-zero rates before)", lambda: _cli_exit("fi", "--dt", "100"), SystemExit, _E2 + r"argument --dt: must be <= 0\.1 ms"),
    ("hh-jax fi", "--num huge", lambda: _cli_exit("fi", "--num", "9" * 20), SystemExit, _E2 + r"argument --num: must be an integer in \[2, 100000\]"),
    ("hh-jax fi", "--window 0.5 (shorter than two inter-spike intervals: all rates 0)", lambda: _cli_exit("fi", "--window", "0.5", "--num", "2", "--no-plot"), SystemExit, _E2 + r"--window 0\.5 ms is shorter than 20 ms, less than two inter-spike intervals"),
    ("hh-jax fi", "--transient 1e12", lambda: _cli_exit("fi", "--transient", "1e12"), SystemExit, _E2 + r"--transient/--window/--dt: .* steps, more than 1e\+09"),
    ("hh-jax bifurcation", "--i-max 1e300", lambda: _cli_exit("bifurcation", "--i-max", "1e300"), SystemExit, _E2 + r"argument --i-max: 1e300 uA/cm\^2 is outside"),
    ("hh-jax bifurcation", "tiny --cycle-step", lambda: _cli_exit("bifurcation", "--cycle-step", "1e-12"), SystemExit, _E2 + r"--cycle-step 1e-12 over \[0, 200\] uA/cm\^2 implies 2e\+14 points, more than 2000"),
    ("hh-jax fit", "--protocol outside the recording", lambda: _cli_exit("fit", "--data", _REC(), "--protocol", "10@500-600"), SystemExit, _E2 + r"--protocol: step '10@500-600' \(500-600 ms\) lies outside the recording \(0-10 ms"),
    ("hh-jax fit", "--protocol amplitude beyond 1e4", lambda: _cli_exit("fit", "--data", _REC(), "--protocol", "-1e5"), SystemExit, _E2 + r"--protocol: '-1e5': -100000 uA/cm\^2 is outside the model's range"),
    ("hh-jax fit", "--dt 100", lambda: _cli_exit("fit", "--data", _REC(), "--protocol", "10", "--dt", "100"), SystemExit, _E2 + r"argument --dt: must be <= 0\.1 ms"),
    ("hh-jax fit", "--seed beyond int64", lambda: _cli_exit("fit", "--data", _REC(), "--protocol", "10", "--seed", "9" * 30), SystemExit, _E2 + r"argument --seed: must be an integer that fits in int64"),
    ("fit.load_recording", "voltage in volts labelled voltage_mV", lambda: F.load_recording(_rec_csv("volts.csv", lambda t: -0.065)), ValueError, r"volts\.csv: voltage_mV stays within \[-0\.065, -0\.065\]: that looks like volts, not mV; multiply the column by 1000"),
    ("fit.load_recording", "voltage in microvolts", lambda: F.load_recording(_rec_csv("uv.csv", lambda t: -65000.0)), ValueError, r"uv\.csv: voltage_mV is -6\.5e\+04 at sample 0, outside the plausible range \[-200, 200\] mV"),
    ("fit.load_recording", "recording spanning 1e12 ms", lambda: F.load_recording(_rec_csv("long.csv", t=[0.0, 1e12])), ValueError, r"long\.csv: time_ms spans 1e\+12 ms \(0 to 1e\+12\), more than 1e\+08 ms"),
    ("fit.load_recording", "times of ±1e308", lambda: F.load_recording(_rec_csv("huge.csv", t=[-1e308, 1e308])), ValueError, r"huge\.csv: time_ms spans inf ms"),
    ("fit.load_recording", "current of 1e308", lambda: F.load_recording(_rec_npz("i.npz", time_ms=np.arange(3.0), voltage_mV=-65.0 + np.zeros(3), current=np.array([0.0, 1e308, 0.0]))), ValueError, r"i\.npz: current is 1e\+308 at sample 1, outside ±10000 uA/cm\^2"),
    ("fit.load_recording", "NPZ: empty file", lambda: F.load_recording(_file("empty.npz", b"")), ValueError, r"empty\.npz: not a readable NPZ file: empty file \(expected a zip of \.npy arrays time_ms, voltage_mV\[, current\]"),
    ("fit.load_recording", "NPZ: text, no zip signature", lambda: F.load_recording(_file("text.npz", "time_ms,voltage_mV")), ValueError, r"text\.npz: not a readable NPZ file: no zip signature \(expected a zip of \.npy arrays"),
    ("fit.load_recording", "NPZ: a single .npy array", lambda: F.load_recording(_npy_as_npz()), ValueError, r"one\.npz: not a readable NPZ file: a single \.npy array"),
    ("fit.load_recording", "NPZ: truncated zip", lambda: F.load_recording(_file("cut.npz", b"PK\x03\x04" + b"\x00" * 20)), ValueError, r"cut\.npz: not a readable NPZ file: the zip archive is damaged or truncated"),
    ("fit.load_recording", "NPZ: pickled object array", lambda: F.load_recording(_rec_npz("obj.npz", time_ms=np.array([0, "a"], dtype=object), voltage_mV=np.ones(2))), ValueError, r"obj\.npz: array 'time_ms' holds pickled/object data, which is never loaded; store numbers"),
    ("fit.load_recording", "NPZ: missing voltage array", lambda: F.load_recording(_rec_npz("miss.npz", time_ms=np.arange(3.0))), ValueError, r"miss\.npz: missing array 'voltage_mV' \(or 'V', 'voltage'\); found \['time_ms'\] \(expected arrays time_ms, voltage_mV\[, current\]\)"),
    ("fit.load_recording", "NPZ: a member that is not .npy", lambda: F.load_recording(_zip_member_not_npy()), ValueError, r"member\.npz: member 'time_ms' is not a \.npy array"),
    ("fit.Recording.resample", "grid of more than 1e8 samples", lambda: F.Recording(t=np.array([0.0, 1e7]), V=np.array([-65.0, -65.0])).resample(1e-5), ValueError, r"resample: dt = 1e-05 ms over 1e\+07 ms gives 1e\+12 samples, more than 1e\+08; use a larger dt"),
]


def _nwb(name, **kw):
    """A small NWB file of a resting cell (no simulation), written with pynwb; `kw` as
    `recording_files.write_nwb` (``unit=(series, unit)`` overwrites a unit afterwards)."""
    import recording_files as rf

    unit = kw.pop("unit", None)
    path = os.path.join(_DIR.name, name)
    rf.write_nwb(path, duration=12.0, cell=False, **kw)
    if unit is not None:
        rf.set_nwb_unit(path, *unit)
    return path


def _abf(name, **kw):
    import recording_files as rf

    path = os.path.join(_DIR.name, name)
    rf.write_abf(path, duration=12.0, cell=False, **kw)
    return path


def _hdf5(name):
    import h5py

    path = os.path.join(_DIR.name, name)
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    return path


_NOTNWB = r"not an NWB file \(no HDF5 signature\)"
RECORDING_ROWS = [
    ("fit.load_nwb", "not NWB: a text file", lambda: F.load_nwb(_file("text.nwb", "time_ms,voltage_mV\n")), ValueError, r"text\.nwb: " + _NOTNWB),
    ("fit.load_nwb", "not NWB: an HDF5 file of something else", lambda: F.load_nwb(_hdf5("other.nwb")), ValueError, r"other\.nwb: an HDF5 file but not NWB \(no nwb_version attribute\)"),
    ("fit.load_nwb", "no current-clamp series (voltage clamp only)", lambda: F.load_nwb(_nwb("vc.nwb", voltage_clamp=True)), ValueError, r"vc\.nwb: no current-clamp series \(CurrentClampSeries\) in /acquisition \(found: VoltageClampSeries\)"),
    ("fit.load_nwb", "a sweep that does not exist", lambda: F.load_nwb(_nwb("cell.nwb"), sweeps=[99]), ValueError, r"cell\.nwb: sweep 99 does not exist \(sweeps in the file: 12, 13, 14\)"),
    ("fit.load_nwb", "missing stimulus", lambda: F.load_nwb(_nwb("nostim.nwb", stimulus=False)), ValueError, r"nostim\.nwb: sweep 12 has no stimulus .*; pass stimulus=False to load the voltage only"),
    ("fit.load_nwb", "unknown units", lambda: F.load_nwb(_nwb("unit.nwb", unit=("cc13", "furlongs"))), ValueError, r"unit\.nwb: sweep 13 \(cc13\): unknown units 'furlongs' \(expected a voltage unit"),
    ("fit.load_nwb", "mismatched sampling rates (response and stimulus)", lambda: F.load_nwb(_nwb("rates.nwb", stim_rate_factor=0.5)), ValueError, r"rates\.nwb: mismatched sampling rates: sweep 12 \(cc12\) at 20000 Hz, its stimulus at 10000 Hz"),
    ("fit.load_nwb", "sweeps of different lengths", lambda: F.load_nwb(_nwb("short.nwb", short_last=10)), ValueError, r"short\.nwb: the sweeps have different lengths \(12: 241, 13: 241, 14: 231 samples\)"),
    ("fit.load_nwb", "both area_um2 and capacitance_pf", lambda: F.load_nwb(_nwb("cell.nwb"), area_um2=1.0, capacitance_pf=1.0), ValueError, r"give area_um2 or capacitance_pf, not both"),
    ("fit.load_nwb", "area_um2 <= 0", lambda: F.load_nwb(_nwb("cell.nwb"), area_um2=-5.0), ValueError, r"area_um2 must be a positive finite number, got -5\.0"),
    ("fit.load_nwb", "a window without samples", lambda: F.load_nwb(_nwb("cell.nwb"), window=(50.0, 60.0)), ValueError, r"cell\.nwb: window \(50, 60\) ms holds fewer than 2 samples"),
    ("fit.load_abf", "not ABF", lambda: F.load_abf(_file("text.abf", "hello")), ValueError, r"text\.abf: not an ABF file \(starts b'hell', expected 'ABF ' or 'ABF2'\)"),
    ("fit.load_abf", "no current-clamp data (a current channel)", lambda: F.load_abf(_abf("vc.abf", units="pA")), ValueError, r"vc\.abf: no current-clamp data: channel 0 records a current \(pA\), not a voltage"),
    ("fit.load_abf", "a sweep that does not exist", lambda: F.load_abf(_abf("cell.abf"), sweeps=[7]), ValueError, r"cell\.abf: sweep 7 does not exist \(sweeps in the file: 0, 1, 2\)"),
    ("fit.load_abf", "missing stimulus (DAC waveform off)", lambda: F.load_abf(_abf("nostim.abf", stimulus=False)), ValueError, r"nostim\.abf: sweep 0 has no stimulus \(the DAC waveform of channel 0 is not enabled\)"),
    ("fit.load_abf", "unknown units", lambda: F.load_abf(_abf("unit.abf", units="furlong")), ValueError, r"unit\.abf: sweep 0 channel 0: unknown units 'furlong' \(expected a voltage unit"),
    ("fit.load_abf", "unknown command units", lambda: F.load_abf(_abf("dac.abf", dac_units="parsec")), ValueError, r"dac\.abf: sweep 0 channel 0 command: unknown units 'parsec' \(expected a current unit"),
    ("fit.load_recording", "options for a CSV file", lambda: F.load_recording(_REC(), sweeps=[1]), TypeError, r"load_recording: \['sweeps'\] apply to \.nwb and \.abf files, not '\.csv'"),
    ("fit.Recording.with_area", "no whole-cell current", lambda: F.Recording(t=np.arange(3.0), V=np.zeros(3)).with_area(100.0), ValueError, r"with_area: this recording holds no whole-cell current \(I_pA is None\)"),
    ("fit.save_recording", "not an .nwb file name", lambda: F.save_recording(os.path.join(_DIR.name, "r.csv"), F.Recording(t=np.arange(3.0), V=np.zeros(3))), ValueError, r"save_recording: r\.csv: only \.nwb files are written"),
    ("fit.estimate_area", "no whole-cell current", lambda: F.estimate_area(F.Recording(t=np.arange(3.0), V=np.zeros(3))), ValueError, r"estimate_area: needs a Recording with a whole-cell current \(I_pA\)"),
    ("fit.fitted_area", "reference area <= 0", lambda: F.fitted_area(P(), reference_area_um2=0.0), ValueError, r"fitted_area: reference_area_um2 must be a positive finite number \(um\^2\), got 0\.0"),
    ("save_result", "unknown format", lambda: hh_jax.save_result(os.path.join(_DIR.name, "r.h5"), _result(), format="hdf5"), ValueError, r"format must be 'npz' or 'nwb', got 'hdf5'"),
    ("save_result", "NWB area <= 0", lambda: hh_jax.save_result(os.path.join(_DIR.name, "r.nwb"), _result(), format="nwb", area_um2=0.0), ValueError, r"area_um2 must be a positive finite number \(um\^2\), got 0\.0"),
    ("hh-jax fit", "whole-cell NWB recording without an area", lambda: _cli_exit("fit", "--data", _nwb("cell.nwb")), SystemExit, _E2 + r"cell\.nwb holds a whole-cell current \(pA\) and no membrane area: give --area-um2, --capacitance-pf or --fit-area"),
    ("hh-jax fit", "--area-um2 for a CSV file", lambda: _cli_exit("fit", "--data", _REC(), "--protocol", "10", "--area-um2", "100"), SystemExit, _E2 + r"--area-um2: for NWB and ABF files only, not rec10\.csv"),
    ("hh-jax fit", "--sweeps not numbers", lambda: _cli_exit("fit", "--data", _REC(), "--sweeps", "a,b"), SystemExit, _E2 + r"argument --sweeps: expected comma-separated sweep numbers"),
    ("hh-jax fit", "a sweep that does not exist", lambda: _cli_exit("fit", "--data", _nwb("cell.nwb"), "--sweeps", "3", "--area-um2", "100"), SystemExit, _E2 + r"cell\.nwb: sweep 3 does not exist"),
]


ROWS = (IO_ROWS + ANALYSIS_ROWS + FIT_ROWS + PLOT_ROWS + RUN_ROWS
        + CACHE_ROWS + KERNEL_ROWS + FAMILY_ROWS + OUTPUT_ROWS + DATA_ROWS + RECORDING_ROWS)

# Public names of the subpackages with no input to validate (data; containers built by hh_jax).
NO_INPUT = {
    "PARAM_UNITS": "a dict of unit strings (the JSON header)",
    "analysis": "a package; see the analysis.* rows",
    "fit": "a package; see the fit.* rows",
    "fit.AbstractGradientMode": "abstract base of the gradient modes; no input",
    "fit.ForwardMode": "a gradient mode without fields; no input",
    "fit.ReverseMode": "a gradient mode without fields; no input",
    "analysis.CLASSES": "a tuple of class names",
    "analysis.STATE_ORDER": "a tuple of state names",
    "analysis.EquilibriumBranch": "returned by equilibrium_branch(); not validated",
    "analysis.Stability": "returned by stability(); not validated",
    "analysis.LimitCycle": "returned by limit_cycle(); not validated",
    "analysis.CycleBranch": "returned by cycle_branch(); not validated",
    "analysis.FICurve": "returned by fi_curve(); not validated",
    "analysis.PhasePlane": "returned by phase_plane(); not validated",
    "fit.FitResult": "returned by fit(); not validated",
    "fit.DEFAULT_BOUNDS": "a dict of default bounds",
    "fit.FITTABLE": "a tuple of field names",
}
